"""Finding the configured scale sets at startup: concurrently, bounded, one lookup per group.

A listener of thousands of scale sets must not look them up one at a time (two round trips
each, by name): lookups run ``concurrency`` at a time, each runner group is looked up once,
and outages are waited out per lookup with backoff and jitter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import structlog

from gha_scalesets.listener.config import ScaleSetConfig
from gha_scalesets.listener.scaling import Backoff
from gha_scalesets.listener.session import find_scale_set, is_transient
from gha_scalesets.scaleset import Client, ScaleSet
from gha_scalesets.scaleset.errors import (
    RunnerGroupNotFoundError,
    ScaleSetError,
)
from gha_scalesets.scaleset.models import RunnerGroup

log = structlog.get_logger("listener")

T = TypeVar("T")


class StartupError(Exception):
    """The listener cannot start; the message says what to fix."""


def _missing(config: ScaleSetConfig, url: str) -> StartupError:
    which = (
        f"id {config.scale_set_id}"
        if config.scale_set_id is not None
        else f"{config.name!r} not found in runner group {config.runner_group!r}"
    )
    return StartupError(
        f"scale set {which} at {url}: create it first (`pulumi up`), "
        "or fix scale_sets[] in the listener settings"
    )


class _Lookups:
    """Lookups through one gate; a transient failure is retried, anything else stops startup."""

    def __init__(self, client: Client, concurrency: int, max_backoff: float) -> None:
        self.client = client
        self._gate = asyncio.Semaphore(concurrency)
        self._max_backoff = max_backoff
        self._groups: dict[str, asyncio.Task[RunnerGroup | None]] = {}

    async def call(self, lookup: Callable[[], Awaitable[T]]) -> T:
        backoff = Backoff(cap=self._max_backoff)
        while True:
            try:
                async with self._gate:  # the gate covers the request, never the backoff
                    return await lookup()
            except ScaleSetError as exc:
                if not is_transient(exc):
                    raise StartupError(str(exc)) from None
                delay = backoff.failed()
                log.warning(
                    "GitHub unavailable, retrying", error=str(exc), retry_in=round(delay, 2)
                )
                await asyncio.sleep(delay)

    async def _group(self, name: str) -> RunnerGroup | None:
        async def lookup() -> RunnerGroup | None:
            try:
                return await self.client.get_runner_group_by_name(name)
            except RunnerGroupNotFoundError:
                return None

        return await self.call(lookup)

    def group(self, name: str) -> asyncio.Task[RunnerGroup | None]:
        if name not in self._groups:
            self._groups[name] = asyncio.ensure_future(self._group(name))
        return self._groups[name]

    async def scale_set(self, config: ScaleSetConfig) -> ScaleSet:
        group_id = None
        if config.scale_set_id is None:
            group = await self.group(config.runner_group)
            if group is None:
                raise _missing(config, self.client.config.url)
            group_id = group.id
        found = await self.call(lambda: find_scale_set(self.client, config, group_id))
        if found is None:
            raise _missing(config, self.client.config.url)
        return found

    def cancel(self) -> None:
        for task in self._groups.values():
            task.cancel()


async def resolve_scale_sets(
    client: Client,
    configs: Sequence[ScaleSetConfig],
    *,
    concurrency: int = 16,
    max_backoff: float = 60.0,
) -> list[ScaleSet]:
    """The configured scale sets, in order (raises :class:`StartupError` naming the first
    that does not exist or cannot be read)."""
    lookups = _Lookups(client, concurrency, max_backoff)
    started = time.monotonic()
    try:
        async with asyncio.TaskGroup() as group:  # the first failure cancels the others
            tasks = [group.create_task(lookups.scale_set(config)) for config in configs]
    except* StartupError as failed:
        raise failed.exceptions[0] from None
    finally:
        lookups.cancel()
    log.info(
        "scale sets resolved",
        scale_sets=len(configs),
        seconds=round(time.monotonic() - started, 2),
    )
    return [task.result() for task in tasks]
