"""An httpx transport that spreads requests over several small connection pools, in lanes.

httpcore's pool re-scans every connection (and, for each idle one, every other connection)
whenever a request enters or leaves it, so its CPU cost per request grows with the pool size:
at 50-100 requests in flight that scan, not the network, bounds a JIT burst. Several small
pools keep each scan short; a request goes to the pool with the fewest requests in flight.

Requests travel in **lanes** with their own connection budgets: a long poll holds its
connection for the service's whole ~50 s hold, so polls get a lane sized to the scale sets
served and can never starve session, JIT or admin requests of a connection (which, in one
shared budget, stalled a listener past as many scale sets as it had connections). A request
names its lane in the ``gha_scalesets.lane`` extension (default ``api``). The wait for a free
connection happens here, not in httpcore, so it is measured (:class:`LaneStats`) and bounded
by the request's pool timeout.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

import httpx

from gha_scalesets.scaleset.network import NetworkSettings, ProxyRouter, ssl_context

# Connections per shard: small enough that a scan stays cheap, large enough that a few shards
# cover a JIT batch.
SHARD_CONNECTIONS = 16

LANE_EXTENSION = "gha_scalesets.lane"
API_LANE = "api"
LONG_POLL_LANE = "long_poll"
# Upper bounds (seconds) of the wait-for-a-connection histogram.
WAIT_BUCKETS = (0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0)


@dataclass
class LaneStats:
    """One lane since the transport was created: its budget, use, and waits for a connection."""

    capacity: int
    in_use: int = 0
    waiting: int = 0
    requests: int = 0
    timeouts: int = 0  # requests that gave up waiting (httpx.PoolTimeout)
    wait_seconds: float = 0.0
    max_wait_seconds: float = 0.0  # the longest wait; read and reset by :meth:`take_max_wait`
    _buckets: list[int] = field(default_factory=lambda: [0] * (len(WAIT_BUCKETS) + 1))

    def observe(self, waited: float) -> None:
        self.requests += 1
        self.wait_seconds += waited
        self.max_wait_seconds = max(self.max_wait_seconds, waited)
        index = next((i for i, le in enumerate(WAIT_BUCKETS) if waited <= le), len(WAIT_BUCKETS))
        self._buckets[index] += 1

    def cumulative_buckets(self) -> list[tuple[str, int]]:
        """``(le, requests that waited at most le)`` pairs, ending with ``+Inf``."""
        bounds = [*(f"{le:g}" for le in WAIT_BUCKETS), "+Inf"]
        total, pairs = 0, []
        for le, count in zip(bounds, self._buckets, strict=True):
            total += count
            pairs.append((le, total))
        return pairs

    def take_max_wait(self) -> float:
        """The longest wait since the previous call (a publisher's per-interval maximum)."""
        longest, self.max_wait_seconds = self.max_wait_seconds, 0.0
        return longest


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that frees its lane slot once closed (the connection is free then)."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._release is not None:
                self._release()
                self._release = None


Make = Callable[[str | None, httpx.Limits], httpx.AsyncHTTPTransport]


class _Shard:
    """One shard: a direct pool and one pool per proxy, created when first needed."""

    def __init__(self, make: Make, limits: httpx.Limits) -> None:
        self._make = make
        self._limits = limits
        self._pools: dict[str | None, httpx.AsyncHTTPTransport] = {}

    def pool(self, proxy: str | None) -> httpx.AsyncHTTPTransport:
        if proxy not in self._pools:
            self._pools[proxy] = self._make(proxy, self._limits)
        return self._pools[proxy]

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()


class _Lane:
    """``limits.max_connections`` connections over ``ceil(max / SHARD_CONNECTIONS)`` shards.

    At most that many requests are in flight; the next ones wait here for a slot. Least-in-
    flight dispatch then always finds a shard below its own limit, so httpcore never queues.
    """

    def __init__(self, limits: httpx.Limits, make: Make) -> None:
        total = limits.max_connections or SHARD_CONNECTIONS
        count = max(1, math.ceil(total / SHARD_CONNECTIONS))
        keepalive = limits.max_keepalive_connections
        shard_limits = httpx.Limits(
            max_connections=math.ceil(total / count),
            max_keepalive_connections=None if keepalive is None else math.ceil(keepalive / count),
            keepalive_expiry=limits.keepalive_expiry,
        )
        self.shards = [_Shard(make, shard_limits) for _ in range(count)]
        self.in_flight = [0] * count
        self.stats = LaneStats(capacity=total)
        self._slots = asyncio.Semaphore(total)

    async def enter(self, pool_timeout: float | None, name: str) -> int:
        """Wait for a slot (at most ``pool_timeout`` seconds); the shard index to use."""
        waited = 0.0
        if self._slots.locked():
            started = time.monotonic()
            self.stats.waiting += 1
            try:
                async with asyncio.timeout(pool_timeout):
                    await self._slots.acquire()
            except TimeoutError:
                self.stats.timeouts += 1
                raise httpx.PoolTimeout(
                    f"no free connection in the {name!r} lane within {pool_timeout:g} s "
                    f"({self.stats.capacity} connections, all in use)"
                ) from None
            finally:
                self.stats.waiting -= 1
            waited = time.monotonic() - started
        else:
            await self._slots.acquire()  # free: returns without suspending
        self.stats.observe(waited)
        self.stats.in_use += 1
        index = min(range(len(self.shards)), key=self.in_flight.__getitem__)
        self.in_flight[index] += 1
        return index

    def leave(self, index: int) -> None:
        self.in_flight[index] -= 1
        self.stats.in_use -= 1
        self._slots.release()

    async def aclose(self) -> None:
        for shard in self.shards:
            await shard.aclose()


class ShardedTransport(httpx.AsyncBaseTransport):
    """An ``api`` lane of ``limits`` and a ``long_poll`` lane of ``long_poll_connections``
    (default: as many as ``limits``), each split into shards of ``SHARD_CONNECTIONS``.

    ``network`` adds proxies and extra root CAs (defaults: the environment's).
    """

    def __init__(
        self,
        limits: httpx.Limits,
        *,
        http2: bool = False,
        network: NetworkSettings | None = None,
        long_poll_connections: int | None = None,
    ) -> None:
        network = network or NetworkSettings()
        context = ssl_context(network)  # one context for all shards
        self._router = ProxyRouter(network)

        def make(proxy: str | None, shard_limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
            via: httpx.Proxy | None = None
            if proxy is not None:
                # an https:// proxy is trusted like the service (a corporate CA signs both)
                tls = context if proxy.startswith("https:") else None
                via = httpx.Proxy(proxy, ssl_context=tls)
            return httpx.AsyncHTTPTransport(
                verify=context, http2=http2, limits=shard_limits, proxy=via
            )

        polls = long_poll_connections or limits.max_connections
        poll_limits = httpx.Limits(
            max_connections=polls,
            max_keepalive_connections=polls,  # every poll is followed by the next one
            keepalive_expiry=limits.keepalive_expiry,
        )
        self._lanes = {API_LANE: _Lane(limits, make), LONG_POLL_LANE: _Lane(poll_limits, make)}

    def shards(self, lane: str = API_LANE) -> list[_Shard]:
        return self._lanes[lane].shards

    def in_flight(self, lane: str = API_LANE) -> list[int]:
        return list(self._lanes[lane].in_flight)

    @property
    def stats(self) -> Mapping[str, LaneStats]:
        """Per lane: budget, connections in use, requests waiting and how long they waited."""
        return {name: lane.stats for name, lane in self._lanes.items()}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        name = request.extensions.get(LANE_EXTENSION, API_LANE)
        lane = self._lanes.get(name) or self._lanes[API_LANE]
        timeout = request.extensions.get("timeout", {}).get("pool")
        index = await lane.enter(timeout, name)

        def release() -> None:
            lane.leave(index)

        try:
            pool = lane.shards[index].pool(self._router.proxy_for(request.url))
            response = await pool.handle_async_request(request)
        except BaseException:
            release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_ReleasingStream(response.stream, release),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        for lane in self._lanes.values():
            await lane.aclose()
