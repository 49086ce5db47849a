"""A short TTL layer in front of a durable registry's counts.

The scaler reads the count on every decision; the listener is the only writer of its scale
sets (it holds the one message session), so its own reserves and releases adjust the cached
value in place and the store is read again only when the entry is older than the TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gha_scalesets.listener.registry.base import Registry, RunnerRecord


class CachedCountRegistry:
    """Wraps a :class:`Registry`; ``on_lookup(hit)`` reports every count lookup (metrics)."""

    def __init__(
        self,
        inner: Registry,
        ttl_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_lookup: Callable[[bool], None] | None = None,
    ) -> None:
        self.inner = inner
        self._ttl = ttl_seconds
        self._clock = clock
        self._on_lookup = on_lookup
        self._counts: dict[int, tuple[int, float]] = {}  # scale set -> (count, fetched at)

    def _adjust(self, scale_set_id: int, delta: int) -> None:
        cached = self._counts.get(scale_set_id)
        if cached is not None:
            self._counts[scale_set_id] = (max(0, cached[0] + delta), cached[1])

    async def count(self, scale_set_id: int) -> int:
        cached = self._counts.get(scale_set_id)
        hit = cached is not None and self._clock() - cached[1] < self._ttl
        if self._on_lookup is not None:
            self._on_lookup(hit)
        if hit and cached is not None:
            return cached[0]
        value = await self.inner.count(scale_set_id)
        self._counts[scale_set_id] = (value, self._clock())
        return value

    async def reserve(self, scale_set_id: int, names: list[str], max_runners: int) -> list[str]:
        try:
            granted = await self.inner.reserve(scale_set_id, names, max_runners)
        except BaseException:
            self._counts.pop(scale_set_id, None)  # the outcome is unknown: re-read next time
            raise
        self._adjust(scale_set_id, len(granted))
        return granted

    async def release(self, scale_set_id: int, runner_name: str) -> bool:
        try:
            released = await self.inner.release(scale_set_id, runner_name)
        except BaseException:
            self._counts.pop(scale_set_id, None)
            raise
        if released:
            self._adjust(scale_set_id, -1)
        return released

    async def update(self, scale_set_id: int, runner_name: str, **changes: object) -> None:
        await self.inner.update(scale_set_id, runner_name, **changes)

    async def get(self, scale_set_id: int, runner_name: str) -> RunnerRecord | None:
        return await self.inner.get(scale_set_id, runner_name)

    async def find_by_provider_id(self, provider_id: str) -> RunnerRecord | None:
        return await self.inner.find_by_provider_id(provider_id)

    async def list(self, scale_set_id: int) -> list[RunnerRecord]:
        return await self.inner.list(scale_set_id)

    async def repair_count(self, scale_set_id: int) -> int:
        correction = await self.inner.repair_count(scale_set_id)
        if correction:
            self._counts.pop(scale_set_id, None)
        return correction

    async def next_sequence(self, scale_set_id: int, n: int) -> int:
        return await self.inner.next_sequence(scale_set_id, n)

    async def load_profile(self, scale_set_id: int) -> dict[str, Any] | None:
        return await self.inner.load_profile(scale_set_id)

    async def save_profile(self, scale_set_id: int, profile: dict[str, Any]) -> None:
        await self.inner.save_profile(scale_set_id, profile)

    async def close(self) -> None:
        await self.inner.close()
