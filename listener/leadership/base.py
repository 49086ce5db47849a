"""Leases: which listener replica is the active one for a scale set.

A lease is one record per scale set in a shared store (a DynamoDB item, a Kubernetes Lease)
that changes only by compare-and-swap on its ``version``: of several replicas writing over the
same version, exactly one wins. Expiry is never read from a clock in the record: a standby
waits until it has seen the same version for ``duration_seconds`` on its own monotonic clock
(as client-go's leader election does), so clock skew between hosts does not matter.
"""

from __future__ import annotations

import asyncio
import itertools
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


@runtime_checkable
class LeaseStore(Protocol):
    name: str  # for logs and metrics: "dynamodb", "kubernetes", "memory"

    async def read(self, scale_set_id: int) -> Lease | None:
        """The stored lease, ``None`` when there has never been one."""
        ...

    async def swap(self, scale_set_id: int, expected: Lease | None, new: Terms) -> Lease | None:
        """Write ``new`` if the stored lease is still ``expected`` (``None``: absent); returns
        the stored result, or ``None`` when another writer changed the lease first."""
        ...

    async def close(self) -> None: ...


class MemoryLeaseStore:
    """Leases in this process: with one listener process there is nobody to share them with.

    Several electors in one process (tests, or one process per scale set in a test harness)
    share one instance.
    """

    name = "memory"

    def __init__(self) -> None:
        self._leases: dict[int, Lease] = {}
        self._versions = itertools.count(1)
        self._lock = asyncio.Lock()

    async def read(self, scale_set_id: int) -> Lease | None:
        return self._leases.get(scale_set_id)

    async def swap(self, scale_set_id: int, expected: Lease | None, new: Terms) -> Lease | None:
        async with self._lock:
            if self._leases.get(scale_set_id) != expected:
                return None
            lease = new.stored(str(next(self._versions)))
            self._leases[scale_set_id] = lease
            return lease

    async def close(self) -> None:
        pass
