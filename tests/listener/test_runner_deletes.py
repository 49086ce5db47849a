"""Each finished runner is deleted once: by whoever frees its slot, not by both of its endings.

A runner that finished its job ends twice for the listener: the runtime reports its exit
(STOPPED) and GitHub sends JobCompleted, in either order. Deleting it on both would cost one
wasted cloud request per runner (a TerminateInstances, StopTask or pod delete) on every runtime.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from gha_scalesets.listener.runtimes.base import RuntimeEvent
from gha_scalesets.simulator.testing import SimulatorServer
from tests.support.github import create_scale_set, jobs_done
from tests.support.inprocess import InProcessRuntime
from tests.support.listener import listener_settings, running_listener
from tests.support.waits import wait_for

JOBS = 6


class DeleteCountingRuntime(InProcessRuntime):
    """Counts ``terminate`` per provider id (``deleted``); ``exits_after`` holds back the
    runners' exit events until it is set (so that JobCompleted is handled first)."""

    def __init__(self, exits_after: asyncio.Event | None = None) -> None:
        super().__init__()
        self.deleted: Counter[str] = Counter()
        self.exits_handled = 0
        self._exits_after = exits_after

    async def terminate(self, provider_ids: Sequence[str]) -> None:
        self.deleted.update(provider_ids)
        await super().terminate(provider_ids)

    async def events(self) -> AsyncIterator[RuntimeEvent]:
        async for event in super().events():
            if self._exits_after is not None:
                await self._exits_after.wait()
            yield event
            self.exits_handled += 1  # the listener asks for the next one once it handled this


@pytest.mark.parametrize("first", ["runner exit", "JobCompleted"])
async def test_each_finished_runner_is_deleted_once(
    sim: SimulatorServer, state_dir: Path, first: str
) -> None:
    name = f"once-{first.split()[0].lower()}"
    await create_scale_set(sim, name)
    gate = asyncio.Event() if first == "JobCompleted" else None
    runtime = DeleteCountingRuntime(exits_after=gate)
    settings = listener_settings(sim, state_dir, name, max_runners=JOBS)
    async with running_listener(settings, runtime=runtime) as listener:
        await wait_for(lambda: all(listener.ready().values()), 10, "the session")
        sim.queue_jobs([name], count=JOBS, duration_seconds=0.1)
        await wait_for(jobs_done(sim, JOBS), 60, f"{JOBS} completed jobs")
        ss_id = next(iter(listener.workers))

        async def released() -> bool:
            return await listener.registry.count(ss_id) == 0

        await wait_for(released, 20, "every runner's slot to be freed")
        if gate is not None:
            gate.set()  # the exits, now that JobCompleted freed every runner
        launched = {f"task-{n}" for n in range(1, len(runtime.launched) + 1)}
        await wait_for(
            lambda: runtime.exits_handled == len(launched), 10, "every exit to be handled"
        )
        deletes = dict(runtime.deleted)
    assert len(launched) >= JOBS
    # One delete request per runner: the one that freed its slot.
    assert deletes == dict.fromkeys(launched, 1), deletes
