"""One batched lease read shared by every standby elector of a replica.

A standby reads its scale set's lease twice per renew interval; with thousands of scale sets
that is thousands of store calls per second per replica. Instead, the electors of one replica
read from a snapshot of all their leases that is at most ``max_age`` old, refreshed by one
``read_many`` (a list call, or a ``BatchGetItem`` per 100) when the first elector finds it
stale: the same freshness for a few calls per renew interval.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from gha_scalesets.listener.leadership.base import Lease, LeaseStore


class LeaseSnapshot:
    """Standby reads of ``store`` served from one batched read per ``max_age`` seconds."""

    def __init__(
        self, store: LeaseStore, max_age: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._max_age = max_age
        self._clock = clock
        self._ids: set[int] = set()
        self._leases: dict[int, Lease] = {}
        self._taken_at = -math.inf
        self._loading: asyncio.Task[None] | None = None
        self.loads = 0  # batched reads made (for tests and diagnostics)

    async def read(self, scale_set_id: int) -> Lease | None:
        """The lease as of at most ``max_age`` ago (a scale set's first read goes direct)."""
        if scale_set_id not in self._ids:
            self._ids.add(scale_set_id)  # in every batched read from now on
            return await self._store.read(scale_set_id)
        if self._clock() - self._taken_at >= self._max_age:
            if self._loading is None or self._loading.done():
                self._loading = asyncio.create_task(self._load())
            # Shielded: one elector cancelled while waiting must not cancel the others' read.
            await asyncio.shield(self._loading)
        return self._leases.get(scale_set_id)

    async def _load(self) -> None:
        started = self._clock()
        self._leases = await self._store.read_many(sorted(self._ids))
        self._taken_at = started
        self.loads += 1

    async def close(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
            await asyncio.gather(self._loading, return_exceptions=True)
