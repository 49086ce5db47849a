"""Retry policy: which failures to retry and how long to wait between attempts."""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import httpx

from gha_scalesets.scaleset.errors import rate_limit_signal

# Failures that happen before the request can have reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Transport failures that no retry can fix.
_FATAL = (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.ProxyError)


def _retry_after_seconds(value: str, now: float) -> float | None:
    """Parse ``Retry-After``: delay-seconds or an HTTP date."""
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def server_requested_delay(response: httpx.Response, now: float) -> float | None:
    """The wait the server asked for: ``Retry-After``, else the reset of an exhausted rate limit."""
    retry_after = response.headers.get("Retry-After")
    if retry_after is not None:
        delay = _retry_after_seconds(retry_after, now)
        if delay is not None:
            return delay
    if response.headers.get("X-RateLimit-Remaining") == "0":
        try:
            return max(0.0, float(response.headers["X-RateLimit-Reset"]) - now)
        except (KeyError, ValueError):
            return None
    return None


def may_have_reached_server(exc: httpx.TransportError) -> bool:
    """Whether the server may have processed a request that failed with ``exc`` (lost response)."""
    return not isinstance(exc, _NOT_SENT)


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter.

    Retried: transport errors, every 5xx but 501, and rate-limit signals (429, and a 403 that
    carries one: :func:`rate_limit_signal`). A server-requested wait (``Retry-After``,
    ``X-RateLimit-Reset``) replaces the computed backoff; waits longer than
    ``max_server_wait`` or past the ``deadline`` (seconds from the first attempt) are not slept
    through: the call fails at once with the server's answer. ``seed``, ``sleep`` and ``clock``
    exist for deterministic tests (the pacer of :mod:`scaleset.pacing` uses them too).
    """

    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    deadline: float | None = 300.0
    max_server_wait: float = 120.0
    seed: int | None = None
    sleep: Callable[[float], Awaitable[None]] = field(default=_sleep, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        object.__setattr__(self, "_rng", random.Random(self.seed))

    def backoff(self, attempt: int) -> float:
        """Full-jitter backoff before retry number ``attempt`` (1-based)."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return self._rng.uniform(0.0, ceiling)

    def retryable_status(self, response: httpx.Response, extra: Collection[int] = ()) -> bool:
        """Whether an error response is worth another attempt."""
        status = response.status_code
        if status in extra or (status >= 500 and status != 501):
            return True
        return rate_limit_signal(response)

    @staticmethod
    def retryable_transport(exc: httpx.TransportError) -> bool:
        """Whether a transport failure is worth another attempt (not TLS trust or local errors)."""
        return not isinstance(exc, _FATAL) and not untrusted_certificate(exc)


def untrusted_certificate(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a server certificate we do not trust (a retry cannot help)."""
    cause: BaseException | None = exc
    while cause is not None:  # httpx wraps httpcore's error, which wraps the ssl one
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
