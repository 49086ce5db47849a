"""One listener process serving more scale sets than a shared 128-connection pool could hold.

Every scale set's long poll holds a connection for the whole hold; the simulator here holds
polls 30 s (the service holds 50 s), far longer than the test waits, so a poll that starved the
other requests of their connections would show as jobs that never launch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import SecretStr

from benchmarks.noop_runtime import NoopRuntime
from gha_scalesets.listener.runtimes.base import LaunchResult, RunnerSpec
from gha_scalesets.scaleset import Client, PatCredentials
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT
from tests.listener.conftest import ORG, listener_settings, running_listener, wait_for

HOLD_SECONDS = 30.0


class LaunchRecorder(NoopRuntime):
    """Records which scale set each runner was launched for; the runners never start."""

    def __init__(self) -> None:
        super().__init__(run_jobs=False)
        self.scale_sets: list[int] = []

    async def launch(self, runners: Sequence[RunnerSpec]) -> list[LaunchResult]:
        self.scale_sets.extend(spec.scale_set_id for spec in runners)
        return await super().launch(runners)


async def create_scale_sets(sim: SimulatorServer, count: int) -> list[int]:
    async with Client(sim.config_url(ORG), PatCredentials(SecretStr(SIM_PAT))) as client:
        group = await client.get_runner_group_by_name("Default")
        created = [
            client.create_scale_set(name=f"many-{i}", runner_group_id=group.id)
            for i in range(count)
        ]
        return [s.id for s in await asyncio.gather(*created)]


async def test_200_scale_sets_one_job_each_all_launched(
    sim_factory: Callable[..., SimulatorServer], state_dir: Path
) -> None:
    sim = sim_factory(long_poll_seconds=HOLD_SECONDS)
    count = 200
    ids = await create_scale_sets(sim, count)
    runtime = LaunchRecorder()
    settings = listener_settings(
        sim,
        state_dir,
        "unused",
        max_runners=2,
        scale_sets=[{"scale_set_id": i, "max_runners": 2} for i in ids],
        metrics_port=None,
    )
    async with running_listener(settings, runtime=runtime):
        for i in range(count):
            await asyncio.to_thread(sim.queue_jobs, [f"many-{i}"], 1, 60.0)
        await wait_for(
            lambda: len(set(runtime.scale_sets)) == count, 20, "a runner on every scale set"
        )
    assert sorted(runtime.scale_sets) == sorted(ids)  # one each: nothing launched twice
