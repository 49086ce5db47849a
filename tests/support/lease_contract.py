"""The lease store contract, shared by every store's tests (memory, DynamoDB and the fake
Kubernetes API in the fast tier, the real API server in ``tests/real_k8s``)."""

from __future__ import annotations

import asyncio

from gha_scalesets.listener.leadership import Lease, LeaseStore, Terms

SS = 11


async def swap(
    store: LeaseStore, expected: Lease | None, holder: str | None, session_id: str | None = None
) -> Lease | None:
    return await store.swap(SS, expected, Terms(holder, 10, session_id))


async def check_compare_and_swap(store: LeaseStore) -> None:
    """Create when free, renew by the holder, exactly one of two racing writers wins, and a
    stale version never overwrites."""
    assert await store.read(SS) is None
    first = await swap(store, None, "a#1")
    assert first is not None and first.holder == "a#1"
    assert await swap(store, None, "b#1") is None  # created meanwhile
    renewed = await swap(store, first, "a#1", session_id="s-1")
    assert renewed is not None and renewed.version != first.version
    assert await store.read(SS) == renewed
    assert renewed.session_id == "s-1" and renewed.duration_seconds == 10
    # Two standbys race over the same version: one wins, the other is told so.
    winners = await asyncio.gather(swap(store, renewed, "b#1"), swap(store, renewed, "c#1"))
    assert sorted(w is None for w in winners) == [False, True]
    assert await swap(store, first, "a#1") is None  # a stale version never overwrites


async def check_release(store: LeaseStore) -> None:
    """A release clears the holder and the session."""
    held = await swap(store, None, "a#1", session_id="s-1")
    released = await swap(store, held, None)
    assert released is not None
    read = await store.read(SS)
    assert read is not None and read.holder is None and read.session_id is None


async def check_read_many(store: LeaseStore) -> None:
    """Several leases in one read: the stored ones, absent ones left out."""
    held = await swap(store, None, "a#1", session_id="s-1")
    other = await store.swap(SS + 1, None, Terms("b#1", 10))
    assert await store.read_many([SS, SS + 1, SS + 2]) == {SS: held, SS + 1: other}
    assert await store.read_many([]) == {}


async def check_members(store: LeaseStore) -> None:
    """Member records: a new version per beat, per group, removed on request."""
    assert await store.members("g1") == []
    await store.beat("g1", "m-a#1", 0)
    await store.beat("g1", "m-b#1", 3)
    await store.beat("g2", "m-c#1", 1)  # another listener's replicas: another group
    first = {m.identity: m for m in await store.members("g1")}
    assert {i: m.leading for i, m in first.items()} == {"m-a#1": 0, "m-b#1": 3}
    await store.beat("g1", "m-a#1", 5)
    again = {m.identity: m for m in await store.members("g1")}
    assert again["m-a#1"].leading == 5 and again["m-a#1"].version != first["m-a#1"].version
    assert again["m-b#1"].version == first["m-b#1"].version  # unchanged without a beat
    await store.remove_member("g1", "m-b#1")
    await store.remove_member("g1", "gone#1")  # already gone: no error
    assert [m.identity for m in await store.members("g1")] == ["m-a#1"]
    assert [m.identity for m in await store.members("g2")] == ["m-c#1"]
    # Members are not scale sets' leases.
    leases = await store.read_many(range(1000))
    assert not any((lease.holder or "").startswith("m-") for lease in leases.values())
