"""An httpx transport that spreads requests over several small connection pools.

httpcore's pool re-scans every connection (and, for each idle one, every other connection)
whenever a request enters or leaves it, so its CPU cost per request grows with the pool size:
at 50-100 requests in flight that scan, not the network, bounds a JIT burst. Several small
pools keep each scan short; a request goes to the pool with the fewest requests in flight.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable

import httpx

from gha_scalesets.scaleset.network import NetworkSettings, ProxyRouter, ssl_context

# Connections per shard: small enough that a scan stays cheap, large enough that a few shards
# cover a JIT batch.
SHARD_CONNECTIONS = 16


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that frees its shard's slot once closed (the connection is free then)."""

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


class _Shard:
    """One shard: a direct pool and one pool per proxy, created when first needed."""

    def __init__(self, make: Callable[[str | None], httpx.AsyncHTTPTransport]) -> None:
        self._make = make
        self._pools: dict[str | None, httpx.AsyncHTTPTransport] = {}

    def pool(self, proxy: str | None) -> httpx.AsyncHTTPTransport:
        if proxy not in self._pools:
            self._pools[proxy] = self._make(proxy)
        return self._pools[proxy]

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()


class ShardedTransport(httpx.AsyncBaseTransport):
    """``limits`` split over ``ceil(max_connections / SHARD_CONNECTIONS)`` HTTP transports.

    ``network`` adds proxies and extra root CAs (defaults: the environment's).
    """

    def __init__(
        self,
        limits: httpx.Limits,
        *,
        http2: bool = False,
        network: NetworkSettings | None = None,
    ) -> None:
        network = network or NetworkSettings()
        total = limits.max_connections or SHARD_CONNECTIONS
        count = max(1, math.ceil(total / SHARD_CONNECTIONS))
        keepalive = limits.max_keepalive_connections
        shard_limits = httpx.Limits(
            max_connections=math.ceil(total / count),
            max_keepalive_connections=None if keepalive is None else math.ceil(keepalive / count),
            keepalive_expiry=limits.keepalive_expiry,
        )
        context = ssl_context(network)  # one context for all shards
        self._router = ProxyRouter(network)

        def make(proxy: str | None) -> httpx.AsyncHTTPTransport:
            via: httpx.Proxy | None = None
            if proxy is not None:
                # an https:// proxy is trusted like the service (a corporate CA signs both)
                tls = context if proxy.startswith("https:") else None
                via = httpx.Proxy(proxy, ssl_context=tls)
            return httpx.AsyncHTTPTransport(
                verify=context, http2=http2, limits=shard_limits, proxy=via
            )

        self._shards = [_Shard(make) for _ in range(count)]
        self._in_flight = [0] * count

    @property
    def shards(self) -> int:
        return len(self._shards)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._shards)), key=self._in_flight.__getitem__)
        self._in_flight[index] += 1

        def release() -> None:
            self._in_flight[index] -= 1

        try:
            pool = self._shards[index].pool(self._router.proxy_for(request.url))
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
        for shard in self._shards:
            await shard.aclose()
