"""Bounded concurrency for runtimes: launching runners one by one or in batches (one result per
runner, in order) and acting on a batch of provider ids."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

import structlog

from gha_scalesets.listener.runtimes.base import LaunchResult, RunnerSpec

log = structlog.get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")


async def launch_batches(
    specs: Sequence[RunnerSpec],
    batches: Sequence[Sequence[int]],
    concurrency: int,
    launch: Callable[[int, list[RunnerSpec]], Awaitable[list[LaunchResult]]],
    errors: Counter[str],
) -> list[LaunchResult]:
    """Run ``launch(batch number, specs of the batch)`` for every batch of indexes into
    ``specs`` (together they name each spec once), at most ``concurrency`` at a time; the
    results come back in the order of ``specs``.

    A bug in one batch becomes its runners' (retryable) error, never the call's exception.
    """
    gate = asyncio.Semaphore(concurrency)
    results: list[LaunchResult | None] = [None] * len(specs)

    async def guarded(number: int, indexes: Sequence[int]) -> None:
        batch = [specs[i] for i in indexes]
        async with gate:
            try:
                launched = await launch(number, batch)
            except Exception as exc:
                # The type only: a message could quote request parameters.
                kind = type(exc).__name__
                errors[kind] += 1
                log.error("launch batch crashed", runners=len(batch), error=kind)
                launched = [
                    LaunchResult(s.runner_name, error=f"unexpected {kind}", retryable=True)
                    for s in batch
                ]
        for index, result in zip(indexes, launched, strict=True):
            results[index] = result

    await asyncio.gather(*(guarded(n, b) for n, b in enumerate(batches)))
    assert all(r is not None for r in results), "every runner is in exactly one batch"
    return [r for r in results if r is not None]


async def launch_all(
    specs: Sequence[RunnerSpec],
    concurrency: int,
    launch_one: Callable[[int, RunnerSpec], Awaitable[LaunchResult]],
    errors: Counter[str],
) -> list[LaunchResult]:
    """Run ``launch_one(index, spec)`` for every spec, at most ``concurrency`` at a time."""

    async def alone(index: int, batch: list[RunnerSpec]) -> list[LaunchResult]:
        return [await launch_one(index, batch[0])]

    return await launch_batches(specs, [[i] for i in range(len(specs))], concurrency, alone, errors)


async def bounded_map(
    items: Iterable[T], concurrency: int, action: Callable[[T], Awaitable[R]]
) -> list[R]:
    """``action(item)`` for every item, at most ``concurrency`` at a time; results in order."""
    gate = asyncio.Semaphore(concurrency)

    async def guarded(item: T) -> R:
        async with gate:
            return await action(item)

    return list(await asyncio.gather(*(guarded(item) for item in items)))


async def for_each(
    items: Iterable[T], concurrency: int, action: Callable[[T], Awaitable[None]]
) -> None:
    """Run ``action(item)`` for every item, at most ``concurrency`` at a time."""
    await bounded_map(items, concurrency, action)
