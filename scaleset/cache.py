"""Opt-in TTL cache for read calls (runner groups, scale sets), invalidated by writes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar, cast

from cachetools import TTLCache
from pydantic import BaseModel

from gha_scalesets.scaleset.singleflight import SingleFlight

# a model, or None when the loader may find nothing (``None`` is never cached)
M = TypeVar("M", bound=BaseModel | None)

_MAX_ENTRIES = 4096


class ReadCache:
    """Caches model reads for ``ttl`` seconds; concurrent misses on one key share one load.

    Callers get deep copies, so mutating a returned model never corrupts the cache.
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._values: TTLCache[Hashable, BaseModel] = TTLCache(_MAX_ENTRIES, ttl, timer=clock)
        self._flights: SingleFlight[BaseModel | None] = SingleFlight()
        self.hits = 0

    async def get(self, key: Hashable, load: Callable[[], Awaitable[M]]) -> M:
        """The cached value of ``key``, else ``load()``'s result (``None`` is not cached)."""
        cached = self._values.get(key)
        if cached is not None:
            self.hits += 1
            return cast(M, cached.model_copy(deep=True))  # stored by the loader of ``key``

        async def load_and_store() -> BaseModel | None:
            value = await load()
            if value is not None:
                self._values[key] = value.model_copy(deep=True)
            return value

        value = await self._flights.run(key, load_and_store)
        return cast(M, None if value is None else value.model_copy(deep=True))

    def put(self, key: Hashable, value: BaseModel) -> None:
        """Store a value a write returned (saves the next read)."""
        self._values[key] = value.model_copy(deep=True)

    def invalidate(self, kind: str) -> None:
        """Drop every entry whose key is a tuple starting with ``kind``."""
        for key in [k for k in self._values if isinstance(k, tuple) and k[:1] == (kind,)]:
            self._values.pop(key, None)
