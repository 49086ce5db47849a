"""Bounded concurrency for runtimes: launching a batch of runners (one result per runner, in
order) and acting on a batch of provider ids."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

import structlog

from gha_scalesets.listener.runtimes.base import LaunchResult, RunnerSpec

log = structlog.get_logger(__name__)

T = TypeVar("T")


async def launch_all(
    specs: Sequence[RunnerSpec],
    concurrency: int,
    launch_one: Callable[[int, RunnerSpec], Awaitable[LaunchResult]],
    errors: Counter[str],
) -> list[LaunchResult]:
    """Run ``launch_one(index, spec)`` for every spec, at most ``concurrency`` at a time.

    A bug in one launch becomes that runner's (retryable) error, never the batch's exception.
    """
    gate = asyncio.Semaphore(concurrency)

    async def guarded(index: int, spec: RunnerSpec) -> LaunchResult:
        async with gate:
            try:
                return await launch_one(index, spec)
            except Exception as exc:
                # The type only: a message could quote request parameters.
                kind = type(exc).__name__
                errors[kind] += 1
                log.error("runner_launch_crashed", runner=spec.runner_name, error=kind)
                return LaunchResult(spec.runner_name, error=f"unexpected {kind}", retryable=True)

    return list(await asyncio.gather(*(guarded(i, s) for i, s in enumerate(specs))))


async def for_each(
    items: Iterable[T], concurrency: int, action: Callable[[T], Awaitable[None]]
) -> None:
    """Run ``action(item)`` for every item, at most ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def guarded(item: T) -> None:
        async with gate:
            await action(item)

    await asyncio.gather(*(guarded(item) for item in items))
