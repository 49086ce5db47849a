"""Retrying one cloud request: transient failures again after full-jitter backoff."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from gha_scalesets.scaleset.retry import RetryPolicy

T = TypeVar("T")


def default_retry() -> RetryPolicy:
    """Backoff for cloud throttling: up to 5 attempts, full jitter, at most 20 s apart."""
    return RetryPolicy(max_attempts=5, backoff_base=0.5, backoff_max=20.0, deadline=None)


async def with_retries(
    send: Callable[[], Awaitable[T]],
    retry: RetryPolicy,
    *,
    failures: tuple[type[BaseException], ...],
    transient: Callable[[BaseException], bool],
    on_failure: Callable[[BaseException], None] = lambda _exc: None,
) -> T:
    """``send()`` until it succeeds, fails with a non-transient error, or the attempts run out
    (then the last error is raised). ``on_failure`` sees every failed attempt."""
    attempt = 1
    while True:
        try:
            return await send()
        except failures as exc:
            on_failure(exc)
            if attempt >= retry.max_attempts or not transient(exc):
                raise
            await retry.sleep(retry.backoff(attempt))
            attempt += 1
