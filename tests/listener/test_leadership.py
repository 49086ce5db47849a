"""Leases and leader election: the store contract on memory, DynamoDB (moto) and the
Kubernetes Lease API (the fake API server), and the elector's timing on an injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gha_scalesets.listener.config import K8sRuntimeConfig
from gha_scalesets.listener.leadership import (
    LeaderElector,
    Lease,
    LeaseStore,
    MemoryLeaseStore,
    Terms,
)
from gha_scalesets.listener.leadership.dynamodb import DynamoDBLeaseStore
from gha_scalesets.listener.leadership.kubernetes import ANNOTATION_SESSION_ID, KubernetesLeaseStore
from tests.fixtures.k8s import FakeApiServer
from tests.support.aws import registry_table
from tests.support.clocks import FakeClock
from tests.support.lease_contract import (
    SS,
    check_compare_and_swap,
    check_members,
    check_read_many,
    check_release,
    swap,
)

NAMESPACE = "runners"


@pytest.fixture(params=["memory", "dynamodb", "kubernetes"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[LeaseStore]:
    leases: LeaseStore
    if request.param == "memory":
        leases = MemoryLeaseStore()
    elif request.param == "dynamodb":
        leases = DynamoDBLeaseStore(*registry_table(request.getfixturevalue("aws"), "leases"))
    else:
        api: FakeApiServer = request.getfixturevalue("k8s_api")
        leases = KubernetesLeaseStore(K8sRuntimeConfig(namespace=NAMESPACE, api_url=api.url))
    yield leases
    await leases.close()


async def test_compare_and_swap_lets_exactly_one_writer_win(store: LeaseStore) -> None:
    await check_compare_and_swap(store)


async def test_release_clears_the_holder(store: LeaseStore) -> None:
    await check_release(store)


async def test_read_many_reads_several_leases_at_once(store: LeaseStore) -> None:
    await check_read_many(store)


async def test_member_records_of_the_replicas(store: LeaseStore) -> None:
    await check_members(store)


async def test_kubernetes_lease_is_a_real_lease_object(k8s_api: FakeApiServer) -> None:
    store = KubernetesLeaseStore(K8sRuntimeConfig(namespace=NAMESPACE, api_url=k8s_api.url))
    try:
        await swap(store, None, "pod-a#1", session_id="s-9")
    finally:
        await store.close()
    lease = k8s_api.state.get("leases", NAMESPACE, f"gha-listener-{SS}")
    assert lease is not None
    assert lease["apiVersion"] == "coordination.k8s.io/v1" and lease["kind"] == "Lease"
    assert lease["spec"]["holderIdentity"] == "pod-a#1"
    assert lease["spec"]["leaseDurationSeconds"] == 10
    assert lease["metadata"]["annotations"][ANNOTATION_SESSION_ID] == "s-9"
    assert k8s_api.state.requests["create leases"] == 1


class FlakyStore(MemoryLeaseStore):
    """A memory store that can lose its connection (every call raises) or run a hook on reads."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.on_read: Callable[[], Awaitable[None]] | None = None

    async def read(self, scale_set_id: int) -> Lease | None:
        if self.down:
            raise ConnectionError("registry unreachable")
        if self.on_read is not None:
            await self.on_read()
        return await super().read(scale_set_id)

    async def swap(self, scale_set_id: int, expected: Lease | None, new: Terms) -> Lease | None:
        if self.down:
            raise ConnectionError("registry unreachable")
        return await super().swap(scale_set_id, expected, new)


def _elector(store: LeaseStore, identity: str, clock: FakeClock) -> LeaderElector:
    return LeaderElector(
        store, SS, identity, duration=10, renew_interval=2, clock=clock, sleep=clock.sleep
    )


async def test_standby_takes_over_a_silent_lease_and_learns_its_session() -> None:
    store, clock = MemoryLeaseStore(), FakeClock()
    await store.swap(SS, None, Terms("dead#1", 10, "s-dead"))
    standby = _elector(store, "b#1", clock)
    takeover = await standby.acquire()
    assert takeover.reason == "expired"
    assert takeover.previous_holder == "dead#1" and takeover.previous_session_id == "s-dead"
    assert clock.now == 10  # the whole lease duration unchanged, not a moment less
    assert standby.leading and (await store.read(SS)).holder == "b#1"  # type: ignore[union-attr]


async def test_standby_never_takes_a_lease_that_is_renewed() -> None:
    store, clock = FlakyStore(), FakeClock()
    await store.swap(SS, None, Terms("a#1", 10))

    renewed_at = [0.0]

    async def holder_renews_until_30s() -> None:
        current = await MemoryLeaseStore.read(store, SS)
        if clock.now < 30:
            await MemoryLeaseStore.swap(store, SS, current, Terms("a#1", 10))
            renewed_at.append(clock.now)

    store.on_read = holder_renews_until_30s
    takeover = await _elector(store, "b#1", clock).acquire()
    assert takeover.reason == "expired"
    assert renewed_at[-1] > 20
    assert clock.now == renewed_at[-1] + 10  # only once renewals stopped for a whole lease


async def test_a_released_lease_is_taken_at_the_next_read() -> None:
    store, clock = MemoryLeaseStore(), FakeClock()
    leader = _elector(store, "a#1", clock)
    assert (await leader.acquire()).reason == "free"
    await leader.record_session("s-a")
    standby = asyncio.create_task(_elector(store, "b#1", clock).acquire())
    await asyncio.sleep(0)
    started = clock.now
    await leader.release()
    takeover = await standby
    assert takeover.reason == "released" and takeover.previous_session_id is None
    assert clock.now - started <= 1  # within half a renew interval
    assert not leader.leading


async def test_active_is_deposed_when_another_replica_took_the_lease() -> None:
    store, clock = MemoryLeaseStore(), FakeClock()
    leader = _elector(store, "a#1", clock)
    await leader.acquire()
    current = await store.read(SS)
    await store.swap(SS, current, Terms("b#1", 10))
    await leader.hold()  # returns: the next renewal is refused
    assert not leader.leading
    assert clock.now == 2
    assert not await leader.confirm()  # and it never writes over the new holder
    assert (await store.read(SS)).holder == "b#1"  # type: ignore[union-attr]


async def test_active_steps_down_before_any_standby_could_take_over() -> None:
    store, clock = FlakyStore(), FakeClock()
    leader = _elector(store, "a#1", clock)
    await leader.acquire()  # at t=0
    store.down = True  # the registry is gone: every renewal fails
    await leader.hold()
    assert not leader.leading
    # Fenced at duration - renew interval: a standby that saw the last write at t=0 waits
    # until t=10 at the earliest.
    assert clock.now == 8


async def test_active_keeps_leading_through_short_store_outages() -> None:
    store, clock = FlakyStore(), FakeClock()
    leader = _elector(store, "a#1", clock)
    await leader.acquire()
    store.down = True
    holding = asyncio.create_task(leader.hold())
    while clock.now < 4:  # two failed renewals
        await asyncio.sleep(0)
    store.down = False
    while clock.now < 30:
        await asyncio.sleep(0)
    assert not holding.done() and leader.leading
    holding.cancel()


async def test_standby_takes_a_silent_kubernetes_lease_over(k8s_api: FakeApiServer) -> None:
    """Two replicas on the Lease API (real clock, 1 s lease): the holder stops renewing, the
    standby takes over after the lease duration and learns the session to delete."""
    config = K8sRuntimeConfig(namespace=NAMESPACE, api_url=k8s_api.url)
    stores = [KubernetesLeaseStore(config), KubernetesLeaseStore(config)]
    holder, standby = (
        LeaderElector(store, SS, identity, duration=1.0, renew_interval=0.25)
        for store, identity in zip(stores, ("pod-a#1", "pod-b#1"), strict=True)
    )
    try:
        assert (await holder.acquire()).reason == "free"
        assert await holder.record_session("s-a")
        takeover = await asyncio.wait_for(standby.acquire(), 10)  # holder went silent
        assert (takeover.reason, takeover.previous_session_id) == ("expired", "s-a")
        assert not await holder.confirm()  # the old holder is fenced off
        lease = k8s_api.state.get("leases", NAMESPACE, f"gha-listener-{SS}")
        assert lease is not None and lease["spec"]["holderIdentity"] == "pod-b#1"
        await standby.release()
        lease = k8s_api.state.get("leases", NAMESPACE, f"gha-listener-{SS}")
        assert lease is not None and lease["spec"]["holderIdentity"] is None
    finally:
        for store in stores:
            await store.close()


async def test_a_renewal_whose_answer_was_lost_does_not_depose_the_active() -> None:
    """The store applied a renewal but the answer never arrived: the next renewal is refused
    (the version moved), yet the lease still names this replica, so it keeps leading."""
    store, clock = MemoryLeaseStore(), FakeClock()
    leader = _elector(store, "a#1", clock)
    await leader.acquire()
    current = await store.read(SS)
    await store.swap(SS, current, Terms("a#1", 10))  # applied, answer lost
    assert await leader.confirm()
    assert leader.leading and (await store.read(SS)).holder == "a#1"  # type: ignore[union-attr]


async def test_a_lone_process_never_renews_and_never_loses_its_leases() -> None:
    """A store only this process uses (no replicas): renewing could only cost CPU."""
    store, clock = MemoryLeaseStore(exclusive=True), FakeClock()
    leader = _elector(store, "a#1", clock)
    await leader.acquire()
    held = await store.read(SS)
    guard = asyncio.create_task(leader.hold())
    clock.now += 3600  # an hour without a renewal
    await asyncio.sleep(0.01)
    assert not guard.done() and await store.read(SS) == held
    assert await leader.record_session("s-1")  # a write an hour later still leads
    assert leader.leading and (await store.read(SS)).session_id == "s-1"  # type: ignore[union-attr]
    guard.cancel()
