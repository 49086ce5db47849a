"""One listener process serving many scale sets: more than a shared 128-connection pool could
hold, budgets from the configuration (or a clear refusal), concurrent lookups, staggered first
polls, and a stop that says which sessions it could not delete.

Every scale set's long poll holds a connection for the whole hold; the simulator here holds
polls 30 s (the service holds 50 s), far longer than the test waits, so a poll that starved the
other requests of their connections would show as jobs that never launch.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from gha_scalesets.listener.app import Listener
from gha_scalesets.listener.capacity import CapacityError, ensure_open_files, plan
from gha_scalesets.listener.config import ListenerSettings, ScaleSetConfig
from gha_scalesets.listener.runtimes.base import LaunchResult, RunnerSpec
from gha_scalesets.listener.startup import StartupError, resolve_scale_sets
from gha_scalesets.listener.worker import Phase
from gha_scalesets.scaleset import ScaleSet
from gha_scalesets.scaleset.config_url import parse_config_url
from gha_scalesets.scaleset.models import RunnerGroup
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT
from tests.support.github import ORG, create_scale_sets
from tests.support.listener import listener_settings, running_listener
from tests.support.noop_runtime import NoopRuntime
from tests.support.observe import captured_logs
from tests.support.waits import wait_for

HOLD_SECONDS = 30.0
DELETE_SESSION = "DELETE /_apis/runtime/runnerscalesets/{id}/sessions/{session_id}"


class LaunchRecorder(NoopRuntime):
    """Records which scale set each runner was launched for; the runners never start."""

    def __init__(self) -> None:
        super().__init__(run_jobs=False)
        self.scale_sets: list[int] = []

    async def launch(self, runners: Sequence[RunnerSpec]) -> list[LaunchResult]:
        self.scale_sets.extend(spec.scale_set_id for spec in runners)
        return await super().launch(runners)


def by_id(
    sim: SimulatorServer, state_dir: Path, ids: list[int], max_runners: int = 1, **overrides: Any
) -> ListenerSettings:
    """Settings of a test listener serving the scale sets ``ids`` (no metrics endpoint)."""
    return listener_settings(
        sim,
        state_dir,
        "unused",
        max_runners=max_runners,
        scale_sets=[{"scale_set_id": i, "max_runners": max_runners} for i in ids],
        metrics_port=None,
        **overrides,
    )


async def test_200_scale_sets_one_job_each_all_launched(
    sim_factory: Callable[..., SimulatorServer], state_dir: Path
) -> None:
    sim = sim_factory(long_poll_seconds=HOLD_SECONDS)
    count = 200
    ids = [s.id for s in await create_scale_sets(sim, [f"many-{i}" for i in range(count)])]
    runtime = LaunchRecorder()
    async with running_listener(by_id(sim, state_dir, ids, max_runners=2), runtime=runtime):
        for i in range(count):
            await asyncio.to_thread(sim.queue_jobs, [f"many-{i}"], 1, 60.0)
        await wait_for(
            lambda: len(set(runtime.scale_sets)) == count, 20, "a runner on every scale set"
        )
    assert sorted(runtime.scale_sets) == sorted(ids)  # one each: nothing launched twice


def _settings(sim_url: str, count: int, **overrides: Any) -> ListenerSettings:
    return ListenerSettings(
        github_config_url=f"{sim_url}/{ORG}",
        credentials={"token": SIM_PAT},
        scale_sets=[{"name": f"many-{i}"} for i in range(count)],
        metrics_port=None,
        **overrides,
    )


async def test_a_configuration_that_cannot_be_served_is_refused_at_startup() -> None:
    settings = _settings("http://127.0.0.1:9", 3, capacity={"long_poll_connections": 2})
    listener = Listener(settings, runtime=LaunchRecorder())
    with pytest.raises(StartupError) as refused:
        await listener.start()
    message = str(refused.value)
    assert "capacity.long_poll_connections (2) is below the number of scale sets (3)" in message
    assert "at least 3" in message
    await listener.stop()


def test_the_budget_follows_the_scale_sets_and_the_overrides() -> None:
    default = plan(_settings("http://x", 2000))
    assert (default.long_poll_connections, default.api_connections) == (2008, 128)
    assert default.pool_settings().long_poll_connections == 2008
    sized = plan(
        _settings("http://x", 10, capacity={"long_poll_connections": 10, "api_connections": 64})
    )
    assert (sized.long_poll_connections, sized.api_connections) == (10, 64)


def test_the_open_files_limit_is_raised_to_what_the_budget_needs_or_refused() -> None:
    raised: list[tuple[int, int]] = []

    def set_(_: int, limits: tuple[int, int]) -> None:
        raised.append(limits)

    assert ensure_open_files(2400, get=lambda _: (1024, 524288), set_=set_) == 2400
    assert raised == [(2400, 524288)]
    assert ensure_open_files(2400, get=lambda _: (4096, 4096), set_=set_) == 4096
    with pytest.raises(CapacityError, match=r"needs up to 2400 open files.*at most 1024"):
        ensure_open_files(2400, get=lambda _: (1024, 1024), set_=set_)
    assert len(raised) == 1


class SlowLookups:
    """Stands in for the client in ``resolve_scale_sets``: each lookup takes a few event-loop
    turns, so that lookups overlap as far as the gate lets them."""

    def __init__(self) -> None:
        self.config = parse_config_url("https://github.com/acme")
        self.calls: list[str] = []
        self.in_flight = 0
        self.peak = 0

    async def _call(self, what: str) -> None:
        self.calls.append(what)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        for _ in range(5):
            await asyncio.sleep(0)
        self.in_flight -= 1

    async def get_runner_group_by_name(self, name: str) -> RunnerGroup:
        await self._call(f"group {name}")
        return RunnerGroup(id=int(name.removeprefix("g") or 0), name=name)

    async def get_scale_set_by_name(self, group_id: int, name: str) -> ScaleSet:
        await self._call(f"set {name}")
        return ScaleSet(id=int(name.split("-")[1]) + 100, name=name, runner_group_id=group_id)


async def test_scale_sets_are_looked_up_concurrently_and_each_runner_group_once() -> None:
    lookups = SlowLookups()
    configs = [ScaleSetConfig(name=f"many-{i}", runner_group=f"g{i % 2}") for i in range(10)]
    found = await resolve_scale_sets(lookups, configs, concurrency=4)  # type: ignore[arg-type]
    assert [s.id for s in found] == [100 + i for i in range(10)]  # in configuration order
    assert [s.runner_group_id for s in found] == [i % 2 for i in range(10)]
    assert sorted(c for c in lookups.calls if c.startswith("group")) == ["group g0", "group g1"]
    assert lookups.peak == 4  # bounded by the gate, and reached


def test_first_polls_are_cut_to_phases_spread_evenly_over_the_window() -> None:
    window = 50.0
    phases = [Phase(100.0 + window * i / 4, window) for i in range(4)]
    # Sessions opened late and in a burst (t = 130..131): each first poll ends in its phase.
    cuts = [p.cut(now=130.0 + i / 4) for i, p in enumerate(phases)]
    assert cuts == [20.0, 32.25, 44.5, 6.75]  # returns at 150, 162.5, 175, 137.5 (+ 50 s each)
    assert Phase(100.0, window).cut(now=150.5) == 49.5
    assert Phase(100.0, window).cut(now=149.5) == 0.0  # within 2 % of its phase: no cut


async def test_first_polls_are_cut_short_so_that_they_return_spread_over_the_hold(
    sim_factory: Callable[..., SimulatorServer], state_dir: Path
) -> None:
    sim = sim_factory(long_poll_seconds=HOLD_SECONDS)
    ids = [s.id for s in await create_scale_sets(sim, [f"many-{i}" for i in range(2)])]
    settings = by_id(sim, state_dir, ids, capacity={"poll_stagger_seconds": 0.4})  # 0.2 s apart
    polls = lambda: sim.stats()["requests"].get("GET /message", 0)  # noqa: E731
    async with running_listener(settings, runtime=LaunchRecorder()):
        # Without the cut each set would poll once in the simulator's 30 s hold.
        await wait_for(lambda: polls() >= 3, 10, "a first poll cut short and polled again")
    assert polls() <= 4  # each first poll cut at most once


async def test_a_stop_says_which_sessions_it_could_not_delete(
    sim: SimulatorServer, state_dir: Path
) -> None:
    ids = [s.id for s in await create_scale_sets(sim, [f"many-{i}" for i in range(3)])]
    listener = Listener(by_id(sim, state_dir, ids), runtime=LaunchRecorder())
    await listener.start()
    await wait_for(lambda: all(listener.ready().values()), 10, "three sessions")
    sim.set_faults(error_rate=1.0, error_status=500, routes=[DELETE_SESSION])
    with captured_logs("info") as log:
        await listener.stop()
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    [report] = [e for e in lines if e["event"].startswith("message sessions not deleted")]
    assert report["count"] == 3 and report["scale_sets"] == ["many-0", "many-1", "many-2"]
    assert report["level"] == "error"


async def test_startup_objects_leave_garbage_collection_once_every_scale_set_is_served(
    sim: SimulatorServer, state_dir: Path
) -> None:
    ids = [s.id for s in await create_scale_sets(sim, [f"many-{i}" for i in range(2)])]
    async with running_listener(by_id(sim, state_dir, ids), runtime=LaunchRecorder()) as listener:
        try:
            await asyncio.wait_for(listener.freeze_when_settled(), 10)
            assert all(listener.ready().values())  # it waited for the sessions
            assert gc.get_freeze_count() > 0
        finally:
            gc.unfreeze()  # the test process goes on collecting
