"""Opt-in TTL cache for read calls (runner groups, scale sets), invalidated by writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from cachetools import TTLCache
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_MAX_ENTRIES = 4096


class ReadCache:
    """Caches model reads for ``ttl`` seconds; concurrent misses on one key share one load.

    Callers get deep copies, so mutating a returned model never corrupts the cache.
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._values: TTLCache[Hashable, BaseModel] = TTLCache(_MAX_ENTRIES, ttl, timer=clock)
        self._loading: dict[Hashable, asyncio.Future[BaseModel | None]] = {}
        self.hits = 0

    async def get(self, key: Hashable, load: Callable[[], Awaitable[M | None]]) -> M | None:
        """The cached value of ``key``, else ``load()``'s result (``None`` is not cached)."""
        cached = self._values.get(key)
        if cached is not None:
            self.hits += 1
            return cached.model_copy(deep=True)  # type: ignore[return-value]
        while (pending := self._loading.get(key)) is not None:
            try:
                value = await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise
                continue  # the loading caller was cancelled, not us: load ourselves
            return None if value is None else value.model_copy(deep=True)  # type: ignore[return-value]
        future: asyncio.Future[BaseModel | None] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved so an unawaited failure is not logged
            raise
        else:
            future.set_result(value)
            if value is not None:
                self._values[key] = value.model_copy(deep=True)
            return value
        finally:
            del self._loading[key]

    def put(self, key: Hashable, value: BaseModel) -> None:
        """Store a value a write returned (saves the next read)."""
        self._values[key] = value.model_copy(deep=True)

    def invalidate(self, kind: str) -> None:
        """Drop every entry whose key is a tuple starting with ``kind``."""
        for key in [k for k in self._values if isinstance(k, tuple) and k[:1] == (kind,)]:
            self._values.pop(key, None)
