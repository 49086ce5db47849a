"""Replicas share the scale sets: the share each may lead, electors that respect it, handover.

Unit tests on an injected clock (the elector's gate, the balancer's view of the members),
then the lease snapshot that batches the standbys' reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gha_scalesets.listener.leadership import LeaderElector, Lease, MemoryLeaseStore, Terms
from gha_scalesets.listener.leadership.balance import Balancer, member_group
from gha_scalesets.listener.leadership.snapshot import LeaseSnapshot
from tests.support.clocks import FakeClock
from tests.support.lease_contract import SS

DURATION, RENEW = 10.0, 2.0


def lone_gate(size: int) -> Balancer:
    """The gate of a replica alone with ``size`` scale sets: ``size`` slots."""
    return Balancer(
        MemoryLeaseStore(),
        "g",
        "lone#1",
        size,
        duration=DURATION,
        renew_interval=RENEW,
        shed=lambda count: 0,  # alone: nobody to hand over to
    )


def _elector(
    store: MemoryLeaseStore, identity: str, clock: FakeClock, gate: Balancer, ss: int = SS
) -> LeaderElector:
    return LeaderElector(
        store,
        ss,
        identity,
        duration=DURATION,
        renew_interval=RENEW,
        gate=gate,
        clock=clock,
        sleep=clock.sleep,
    )


async def _acquired_at(elector: LeaderElector, clock: FakeClock) -> float:
    await elector.acquire()
    return clock.now


async def test_a_full_share_leaves_free_leases_to_others_until_nobody_took_them() -> None:
    store, clock, share = MemoryLeaseStore(), FakeClock(), lone_gate(2)
    electors = [_elector(store, "a#1", clock, share, ss) for ss in (1, 2, 3)]
    times = await asyncio.gather(*(_acquired_at(e, clock) for e in electors))
    assert times[:2] == [0, 0]  # its share: two at once
    assert times[2] >= DURATION  # the third once nobody else took it for a lease duration
    assert share.leading == 3


async def test_an_expired_lease_is_taken_over_whatever_the_share() -> None:
    store, clock, share = MemoryLeaseStore(), FakeClock(), lone_gate(0)
    await store.swap(SS, None, Terms("dead#1", DURATION, "s-dead"))
    takeover = await _elector(store, "b#1", clock, share).acquire()
    assert (takeover.reason, takeover.previous_session_id) == ("expired", "s-dead")
    assert clock.now == DURATION and share.leading == 1


async def _handed_over(store: MemoryLeaseStore, clock: FakeClock) -> LeaderElector:
    a = _elector(store, "a#1", clock, lone_gate(1))
    await a.acquire()
    await a.record_session("s-a")
    await a.release(hand_over=True)
    return a


async def test_a_handover_leaves_the_session_for_the_next_active() -> None:
    store, clock = MemoryLeaseStore(), FakeClock()
    await _handed_over(store, clock)
    released = await store.read(SS)
    assert released is not None and released.holder is None and released.session_id == "s-a"
    share_b = lone_gate(1)
    takeover = await _elector(store, "b#1", clock, share_b).acquire()
    assert (takeover.reason, takeover.previous_session_id) == ("released", "s-a")
    assert clock.now == 0 and share_b.leading == 1


async def test_a_replica_does_not_take_back_what_it_handed_over_unless_nobody_did() -> None:
    store, clock = MemoryLeaseStore(), FakeClock()
    a = await _handed_over(store, clock)
    takeover = await a.acquire()
    assert takeover.reason == "released" and clock.now >= DURATION


async def _beat_all(balancers: Sequence[Balancer], clock: FakeClock) -> None:
    for balancer in balancers:
        await balancer.tick()
    clock.now += RENEW


def _balancer(
    store: MemoryLeaseStore, identity: str, clock: FakeClock, shed: list[int]
) -> Balancer:
    def record(count: int) -> int:
        shed.append(count)
        return count

    return Balancer(
        store,
        "g",
        identity,
        30,
        duration=DURATION,
        renew_interval=RENEW,
        shed=record,
        clock=clock,
        sleep=clock.sleep,
    )


async def test_the_share_follows_the_live_replicas_and_the_excess_is_handed_over() -> None:
    store, clock = MemoryLeaseStore(), FakeClock()
    shed_a: list[int] = []
    a = _balancer(store, "a#1", clock, shed_a)
    a.leading = 30
    await _beat_all([a], clock)
    assert (a.replicas, a.share, shed_a) == (1, 30, [])
    b, c = _balancer(store, "b#1", clock, []), _balancer(store, "c#1", clock, [])
    await _beat_all([b, c, a], clock)  # two joined: a sees three replicas
    assert (a.replicas, a.share) == (3, 10)
    assert shed_a == [20] and a.handing_over == 20
    for _ in range(20):  # the handovers end: b and c took ten each
        a.handed_over()
        a.changed(False)
    b.leading = c.leading = 10
    await _beat_all([a, b, c], clock)
    assert shed_a == [20]  # balanced: nothing more


async def test_an_uneven_split_ends_within_one_scale_set() -> None:
    store, clock = MemoryLeaseStore(), FakeClock()
    shed_a: list[int] = []
    a, b = _balancer(store, "a#1", clock, shed_a), _balancer(store, "b#1", clock, [])
    c = _balancer(store, "c#1", clock, [])
    a.total = b.total = c.total = 31  # share 11, floor 10
    a.leading, b.leading, c.leading = 11, 11, 9
    await _beat_all([a, b, c], clock)
    await _beat_all([a], clock)
    assert shed_a == [1]  # c is below the floor: a (above it) hands one over


async def test_a_silent_replica_stops_counting_and_its_record_goes() -> None:
    store, clock = MemoryLeaseStore(), FakeClock()
    a, dead = _balancer(store, "a#1", clock, []), _balancer(store, "dead#1", clock, [])
    await _beat_all([dead, a], clock)
    assert a.replicas == 2
    while clock.now < DURATION + RENEW:
        await _beat_all([a], clock)
    assert a.replicas == 1 and a.share == 30
    while clock.now < 61 + RENEW:
        await _beat_all([a], clock)
    assert [m.identity for m in await store.members("g")] == ["a#1"]
    await a.leave()
    assert await store.members("g") == []


def test_replicas_of_other_scale_sets_are_another_group() -> None:
    sets = [{"name": "a"}, {"name": "b"}]
    assert member_group("https://github.com/acme", sets) == member_group(
        "https://github.com/acme", list(reversed(sets))
    )
    assert member_group("https://github.com/acme", sets) != member_group(
        "https://github.com/acme", sets[:1]
    )


class CountingStore(MemoryLeaseStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def read(self, scale_set_id: int) -> Lease | None:
        self.calls.append("read")
        return await super().read(scale_set_id)

    async def read_many(self, scale_set_ids: Sequence[int]) -> dict[int, Lease]:
        self.calls.append(f"read_many {len(scale_set_ids)}")
        return await super().read_many(scale_set_ids)


async def test_standby_reads_of_a_replica_share_one_batched_read() -> None:
    store, clock = CountingStore(), FakeClock()
    for ss in range(100):
        await store.swap(ss, None, Terms("other#1", DURATION))
    snapshot = LeaseSnapshot(store, RENEW / 2, clock)
    first = await asyncio.gather(*(snapshot.read(ss) for ss in range(100)))
    assert store.calls == ["read"] * 100  # a scale set's first read goes to the store
    store.calls.clear()
    clock.now += RENEW / 2
    again = await asyncio.gather(*(snapshot.read(ss) for ss in range(100)))
    assert again == first and store.calls == ["read_many 100"]
    await store.swap(7, first[7], Terms(None, DURATION))
    assert (await snapshot.read(7)) == first[7]  # at most max_age old
    clock.now += RENEW / 2
    assert (await snapshot.read(7)).holder is None  # type: ignore[union-attr]
    assert store.calls == ["read_many 100", "read_many 100"]
