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
