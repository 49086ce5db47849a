"""Two listener replicas in one process on one scale set: a hot standby, takeover after a
graceful stop and after the active lost the lease store, and fencing of a deposed active.

The replicas share the registry and the lease store (memory, as both would share DynamoDB);
the active's view of the lease store can be cut (``Partition``). Lease timings are short
(1.5 s lease, 0.25 s renewals): the protocol is the same at the default 10 s / 2 s.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import SecretStr

from gha_scalesets.listener.app import Listener
from gha_scalesets.listener.leadership import Lease, LeaseStore, MemoryLeaseStore, Terms
from gha_scalesets.listener.registry.memory import MemoryRegistry
from gha_scalesets.scaleset import Client, PatCredentials
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT
from tests.support.github import ORG, create_scale_set, jobs_done
from tests.support.inprocess import InProcessRuntime
from tests.support.listener import (
    LEADERSHIP,
    Partition,
    listener_settings,
    running_listener,
    session_events,
)
from tests.support.observe import metric_total
from tests.support.waits import wait_for


def leads(listener: Listener) -> bool:
    return all(listener.leading().values())


class Overlap:
    """Samples two replicas: were they ever both serving the scale set at once?"""

    def __init__(self, *replicas: Listener) -> None:
        self._replicas = replicas
        self.seen = False

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[Overlap]:
        async def sample() -> None:
            while True:
                self.seen |= all(leads(r) for r in self._replicas)
                await asyncio.sleep(0.01)

        task = asyncio.create_task(sample())
        try:
            yield self
        finally:
            task.cancel()


def _replica(
    sim: SimulatorServer,
    state_dir: Path,
    name: str,
    owner: str,
    registry: MemoryRegistry,
    leases: LeaseStore,
) -> contextlib.AbstractAsyncContextManager[Listener]:
    """One running replica; replicas share ``registry`` (as they share DynamoDB)."""
    settings = listener_settings(
        sim, state_dir / owner, name, max_runners=4, owner_name=owner, leadership=LEADERSHIP
    )
    return running_listener(settings, registry=registry, leases=leases, runtime=InProcessRuntime())


def takeovers(listener: Listener, reason: str) -> float:
    return metric_total(
        listener.metrics.registry, "gha_listener_lease_takeovers_total", reason=reason
    )


async def test_standby_takes_over_at_once_after_a_graceful_stop(
    sim: SimulatorServer, state_dir: Path
) -> None:
    await create_scale_set(sim, "ha-graceful")
    registry, leases = MemoryRegistry(), MemoryLeaseStore()
    async with contextlib.AsyncExitStack() as first:
        active = await first.enter_async_context(
            _replica(sim, state_dir, "ha-graceful", "replica-a", registry, leases)
        )
        await wait_for(lambda: leads(active), 10, "the first replica to lead")
        async with _replica(
            sim, state_dir, "ha-graceful", "replica-b", registry, leases
        ) as standby:
            await wait_for(lambda: all(standby.ready().values()), 10, "a ready standby")
            assert not leads(standby)
            labels = {"enterprise": "", "organization": ORG, "repository": ""}
            leader = standby.metrics.registry.get_sample_value(
                "gha_listener_leader", {**labels, "name": "ha-graceful"}
            )
            assert leader == 0  # exported, so "no replica leads" is a sum, not an absence
            sim.queue_jobs(["ha-graceful"], count=4, duration_seconds=0.2)
            await wait_for(jobs_done(sim, 4), 30, "the first jobs")
            await first.aclose()  # SIGTERM: session deleted, then the lease released
            await wait_for(lambda: leads(standby), 1.0, "the standby within ~one renew interval")
            sim.queue_jobs(["ha-graceful"], count=3, duration_seconds=0.2)
            await wait_for(jobs_done(sim, 7), 30, "the jobs after the handover")
            assert takeovers(standby, "released") == 1
            assert session_events(standby, "conflict") == 0  # no 409 to wait out
            assert session_events(standby, "created") == 1
    assert sim.stats()["runners"]["duplicate_names"] == 0


async def test_partitioned_active_steps_down_and_never_reopens_a_session(
    sim: SimulatorServer, state_dir: Path
) -> None:
    await create_scale_set(sim, "ha-partition")
    registry, shared = MemoryRegistry(), MemoryLeaseStore()
    partition = Partition(shared)
    async with _replica(sim, state_dir, "ha-partition", "replica-a", registry, partition) as active:
        await wait_for(lambda: leads(active), 10, "the first replica to lead")
        async with _replica(
            sim, state_dir, "ha-partition", "replica-b", registry, shared
        ) as standby:
            await wait_for(lambda: all(standby.ready().values()), 10, "a ready standby")
            async with Overlap(active, standby).watching() as overlap:
                partition.cut = True
                await wait_for(lambda: leads(standby), 10, "the standby to take over")
                assert not leads(active)
                sim.queue_jobs(["ha-partition"], count=4, duration_seconds=0.2)
                await wait_for(jobs_done(sim, 4), 30, "the jobs after the takeover")
                partition.cut = False
                await wait_for(
                    lambda: all(active.ready().values()), 10, "the old active to stand by"
                )
            assert not overlap.seen, "both replicas served the scale set at once"
            assert not leads(active) and leads(standby)
            assert metric_total(active.metrics.registry, "gha_listener_lease_losses_total") == 1
            assert (
                session_events(active, "created") == 1 and session_events(active, "recreated") == 0
            )
            assert takeovers(standby, "expired") == 1
            assert session_events(standby, "conflict") == 0


async def test_active_whose_session_was_taken_over_stands_by(
    sim: SimulatorServer, state_dir: Path
) -> None:
    """Another replica took the lease and deleted the active's session by the id in the
    lease: the active must not open a new session while that replica holds the lease."""
    scale_set = await create_scale_set(sim, "ha-fenced")
    leases = MemoryLeaseStore()
    async with _replica(
        sim, state_dir, "ha-fenced", "replica-a", MemoryRegistry(), leases
    ) as active:
        await wait_for(lambda: leads(active), 10, "the replica to lead")
        held = await wait_for(
            lambda: _with_session(leases, scale_set.id), 5, "the session id in the lease"
        )
        taken = await leases.swap(scale_set.id, held, Terms("intruder#1", 60))
        async with Client(sim.config_url(ORG), PatCredentials(SecretStr(SIM_PAT))) as admin:
            assert held.session_id is not None
            await admin.delete_message_session_by_id(scale_set.id, held.session_id)
        await wait_for(lambda: all(active.ready().values()) and not leads(active), 10, "fencing")
        assert session_events(active, "created") == 1 and session_events(active, "recreated") == 0
        # The intruder stops gracefully: the replica leads again.
        await leases.swap(scale_set.id, taken, Terms(None, 60))
        await wait_for(lambda: leads(active), 5, "the replica to lead again")
        assert session_events(active, "created") == 2


async def _with_session(leases: LeaseStore, scale_set_id: int) -> Lease | None:
    lease = await leases.read(scale_set_id)
    return lease if lease is not None and lease.session_id else None
