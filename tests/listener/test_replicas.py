"""Listener replicas share the scale sets: each leads its share, a replica that joins gets its
share through graceful handovers, one that stops or loses the lease store has its scale sets
taken over, and jobs queued meanwhile all run without exceeding max.

Three replicas in one process over one simulator, sharing a memory lease store and registry
(as they would share DynamoDB); short lease timings (1.5 s lease, 0.25 s renewals).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from gha_scalesets.listener.app import Listener
from gha_scalesets.listener.leadership import LeaseStore, MemoryLeaseStore
from gha_scalesets.listener.registry.memory import MemoryRegistry
from gha_scalesets.simulator.testing import SimulatorServer
from tests.support.github import create_scale_sets, jobs_done
from tests.support.inprocess import InProcessRuntime
from tests.support.listener import (
    LEADERSHIP,
    Partition,
    listener_settings,
    running_listener,
    session_events,
)
from tests.support.observe import FleetPeak, metric_total
from tests.support.waits import wait_for

SETS = 12
MAX_RUNNERS = 2


def led(*replicas: Listener) -> list[int]:
    return [sum(r.leading().values()) for r in replicas]


def split(*replicas: Listener, expected: list[int]) -> bool:
    """Every scale set led by exactly one replica, in the expected shares."""
    leaders = [name for r in replicas for name, leads in r.leading().items() if leads]
    return len(leaders) == len(set(leaders)) == SETS and sorted(led(*replicas)) == expected


def replica(
    sim: SimulatorServer,
    state_dir: Path,
    ids: list[int],
    owner: str,
    registry: MemoryRegistry,
    leases: LeaseStore,
) -> contextlib.AbstractAsyncContextManager[Listener]:
    settings = listener_settings(
        sim,
        state_dir / owner,
        "unused",
        max_runners=MAX_RUNNERS,
        scale_sets=[{"scale_set_id": i, "max_runners": MAX_RUNNERS} for i in ids],
        owner_name=owner,
        leadership=LEADERSHIP,
        metrics_port=None,
    )
    return running_listener(settings, registry=registry, leases=leases, runtime=InProcessRuntime())


def handovers(replica: Listener) -> float:
    return metric_total(replica.metrics.registry, "gha_listener_lease_handovers_total")


async def test_replicas_share_the_scale_sets_through_joins_and_departures(
    sim: SimulatorServer, state_dir: Path
) -> None:
    ids = [s.id for s in await create_scale_sets(sim, [f"many-{i}" for i in range(SETS)])]
    registry, shared = MemoryRegistry(), MemoryLeaseStore()
    partition = Partition(shared)
    async with contextlib.AsyncExitStack() as stack:
        a = await stack.enter_async_context(
            replica(sim, state_dir, ids, "replica-a", registry, shared)
        )
        await wait_for(lambda: led(a) == [SETS], 10, "the first replica to lead every set")
        b_exit = contextlib.AsyncExitStack()
        b = await b_exit.enter_async_context(
            replica(sim, state_dir, ids, "replica-b", registry, shared)
        )
        await wait_for(lambda: split(a, b, expected=[6, 6]), 10, "a 6/6 split after b joined")
        c = await stack.enter_async_context(
            replica(sim, state_dir, ids, "replica-c", registry, partition)
        )
        await wait_for(lambda: split(a, b, c, expected=[4, 4, 4]), 10, "4/4/4 after c joined")
        assert handovers(a) == 8 and handovers(b) == 2  # 6 + 2 from a, 2 from b (to c)
        async with FleetPeak(sim) as peak:
            for i in range(SETS):
                sim.queue_jobs([f"many-{i}"], count=2, duration_seconds=0.5)
            await b_exit.aclose()  # a graceful stop mid-burst: its sets go to a and c
            await wait_for(lambda: split(a, c, expected=[6, 6]), 10, "6/6 after b stopped")
            await wait_for(jobs_done(sim, 2 * SETS), 60, "every job of the burst")
        assert peak.peak <= SETS * MAX_RUNNERS
        partition.cut = True  # c loses the lease store (as if it died): a takes everything
        await wait_for(lambda: led(a, c) == [SETS, 0], 15, "a to take c's scale sets over")
        sim.queue_jobs(["many-0"], count=1, duration_seconds=0.1)
        await wait_for(jobs_done(sim, 2 * SETS + 1), 30, "a job after the takeover")
    assert sum(session_events(r, "conflict") for r in (a, b, c)) == 0  # no 409 was waited out
    # Each new leader deleted the session its predecessor left (handover) or had (takeover).
    assert sum(session_events(r, "taken_over") for r in (a, b, c)) >= 8 + 2 + 4
    assert sim.stats()["runners"]["duplicate_names"] == 0
