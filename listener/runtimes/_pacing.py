"""Client-side pacing of AWS calls: AWS's token buckets mirrored locally, adapting to throttling.

AWS throttles every account and Region with token buckets: EC2 a request bucket per API and,
for ``RunInstances``/``TerminateInstances``, a resource bucket drained per instance; ECS and
Fargate the ``RunTask`` requests and the tasks they start; Parameter Store its transactions per
second (docs/runtimes.md, "API limits", has the figures and their sources). A burst sent
unpaced collects throttling answers, and every runner retrying on its own makes a herd.

:class:`Pacer` keeps one local bucket per operation with the documented refill rate. A call
first reserves its tokens and waits until they exist. The local request bucket holds only half
the documented burst: a request that leaves late (a busy thread pool, network jitter) arrives
when AWS's bucket, full meanwhile, has stopped refilling, and the half left in AWS's bucket
absorbs that. A throttling answer empties the local bucket and halves its refill rate (other
clients of the account drain AWS's bucket too, so the documented rate is only an upper bound);
each success gives back a twentieth of the documented rate, up to it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

_SLOWEST = 1 / 16  # of the documented rate: throttling never stops the listener entirely
_RECOVERY = 1 / 20  # of the documented rate, per success
_REQUEST_HEADROOM = 1 / 2  # of a request bucket's burst, left in AWS's bucket for late requests


@dataclass(frozen=True)
class Rate:
    """A token bucket: ``burst`` tokens at most, ``per_second`` added back each second."""

    burst: float
    per_second: float


@dataclass(frozen=True)
class ApiLimit:
    """One operation's buckets: one token per request, and (``resources``) one per instance
    or task it starts or stops."""

    requests: Rate
    resources: Rate | None = None


class _Bucket:
    def __init__(self, rate: Rate, now: float, *, headroom: float = 0.0) -> None:
        self.burst = max(1.0, rate.burst * (1 - headroom))
        self.documented = rate.per_second
        self.rate = rate.per_second
        self.tokens = self.burst
        self.updated = now

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def reserve(self, tokens: float, now: float) -> float:
        """Take ``tokens`` (going into debt if need be); seconds until the debt is paid."""
        self._refill(now)
        self.tokens -= tokens
        return max(0.0, -self.tokens / self.rate)

    def throttled(self, now: float) -> None:
        self._refill(now)
        self.tokens = min(self.tokens, 0.0)  # AWS's bucket is empty, whatever ours said
        self.rate = max(self.documented * _SLOWEST, self.rate / 2)

    def succeeded(self) -> None:
        self.rate = min(self.documented, self.rate + self.documented * _RECOVERY)


class Pacer:
    """Paces calls by ``service:Operation`` (as counted in ``api_calls``); operations without
    a limit pass at once. ``clock`` and ``sleep`` are injectable (tests run on virtual time).

    ``waited_seconds`` and ``throttled`` say how much pacing happened, for logs and benchmarks.
    """

    def __init__(
        self,
        limits: Mapping[str, ApiLimit],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        now = clock()
        self._buckets = {
            op: [_Bucket(limit.requests, now, headroom=_REQUEST_HEADROOM)]
            + ([_Bucket(limit.resources, now)] if limit.resources else [])
            for op, limit in limits.items()
        }
        self.waited_seconds = 0.0
        self.throttled = 0

    async def acquire(self, operation: str, resources: int = 0) -> None:
        """Wait until ``operation`` may be sent (``resources``: instances or tasks it affects)."""
        buckets = self._buckets.get(operation)
        if not buckets:
            return
        now = self._clock()
        wait = buckets[0].reserve(1, now)
        if len(buckets) > 1 and resources:
            wait = max(wait, buckets[1].reserve(resources, now))
        if wait > 0:
            self.waited_seconds += wait
            await self._sleep(wait)

    def on_throttled(self, operation: str) -> None:
        """AWS answered ``operation`` with a throttling error: slow down."""
        self.throttled += 1
        now = self._clock()
        for bucket in self._buckets.get(operation, ()):
            bucket.throttled(now)

    def on_success(self, operation: str) -> None:
        for bucket in self._buckets.get(operation, ()):
            bucket.succeeded()

    def rate(self, operation: str) -> float | None:
        """The current request rate of ``operation`` (None: not paced)."""
        buckets = self._buckets.get(operation)
        return buckets[0].rate if buckets else None
