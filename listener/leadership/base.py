"""Leases: which listener replica is the active one for a scale set.

A lease is one record per scale set in a shared store (a DynamoDB item, a Kubernetes Lease)
that changes only by compare-and-swap on its ``version``: of several replicas writing over the
same version, exactly one wins. Expiry is never read from a clock in the record: a standby
waits until it has seen the same version for ``duration_seconds`` on its own monotonic clock
(as client-go's leader election does), so clock skew between hosts does not matter.

Replicas also keep a **member** record each (their heartbeat and how many scale sets they
lead) so that each can lead its share (``listener.leadership.balance``); a member's record
changes only by its own writes, so liveness is judged the same way, by its version.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Lease:
    """One stored state of a scale set's lease; ``holder`` ``None`` means released."""

    holder: str | None
    version: str  # opaque; changes with every write
    duration_seconds: float
    session_id: str | None = None  # the holder's GitHub message session (a successor deletes it)


@dataclass(frozen=True)
class Terms:
    """What a write puts in the lease: its holder (``None`` releases it), duration, session."""

    holder: str | None
    duration_seconds: float
    session_id: str | None = None

    def stored(self, version: str) -> Lease:
        return Lease(self.holder, version, self.duration_seconds, self.session_id)


@dataclass(frozen=True)
class Member:
    """One listener replica's heartbeat record; ``version`` changes with every beat."""

    identity: str
    version: str
    leading: int  # scale sets it leads


@runtime_checkable
class LeaseStore(Protocol):
    name: str  # for logs and metrics: "dynamodb", "kubernetes", "memory"

    async def read(self, scale_set_id: int) -> Lease | None:
        """The stored lease, ``None`` when there has never been one."""
        ...

    async def read_many(self, scale_set_ids: Sequence[int]) -> dict[int, Lease]:
        """The stored leases of several scale sets in few calls (absent ones left out)."""
        ...

    async def beat(self, group: str, identity: str, leading: int) -> None:
        """Write this replica's member record of ``group`` (a new version every call)."""
        ...

    async def members(self, group: str) -> list[Member]:
        """Every member record of ``group``, live or not."""
        ...

    async def remove_member(self, group: str, identity: str) -> None:
        """Delete a member record (one's own on a graceful stop, or a long-dead one's)."""
        ...

    async def swap(self, scale_set_id: int, expected: Lease | None, new: Terms) -> Lease | None:
        """Write ``new`` if the stored lease is still ``expected`` (``None``: absent); returns
        the stored result, or ``None`` when another writer changed the lease first."""
        ...

    async def close(self) -> None: ...


class MemoryLeaseStore:
    """Leases in this process: with one listener process there is nobody to share them with.

    Several electors in one process (tests, or one process per scale set in a test harness)
    share one instance. ``exclusive``: only one replica uses it (a lone listener process), so
    nobody could take a lease over and the active need not renew (thousands of scale sets
    would otherwise renew thousands of leases a second for nothing).
    """

    name = "memory"

    def __init__(self, *, exclusive: bool = False) -> None:
        self.exclusive = exclusive
        self._leases: dict[int, Lease] = {}
        self._members: dict[str, dict[str, Member]] = {}
        self._versions = itertools.count(1)
        self._lock = asyncio.Lock()

    async def read(self, scale_set_id: int) -> Lease | None:
        return self._leases.get(scale_set_id)

    async def read_many(self, scale_set_ids: Sequence[int]) -> dict[int, Lease]:
        return {i: self._leases[i] for i in scale_set_ids if i in self._leases}

    async def beat(self, group: str, identity: str, leading: int) -> None:
        member = Member(identity, str(next(self._versions)), leading)
        self._members.setdefault(group, {})[identity] = member

    async def members(self, group: str) -> list[Member]:
        return list(self._members.get(group, {}).values())

    async def remove_member(self, group: str, identity: str) -> None:
        self._members.get(group, {}).pop(identity, None)

    async def swap(self, scale_set_id: int, expected: Lease | None, new: Terms) -> Lease | None:
        async with self._lock:
            if self._leases.get(scale_set_id) != expected:
                return None
            lease = new.stored(str(next(self._versions)))
            self._leases[scale_set_id] = lease
            return lease

    async def close(self) -> None:
        pass
