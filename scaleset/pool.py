"""One tuned ``httpx.AsyncClient`` per event loop, shared by every :class:`~scaleset.Client`.

httpx connection pools belong to the event loop that created them, so "one per process" means
one per running loop (a daemon has one; a :class:`~scaleset.SyncClient` owns a private loop).
Clients lease the pool and the last one to close it closes the connections.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from gha_scalesets.scaleset.network import NetworkSettings
from gha_scalesets.scaleset.sharding import LaneStats, ShardedTransport


@dataclass(frozen=True)
class PoolSettings:
    """Connection-pool tuning; sized so a JIT batch of up to 100 requests never queues.

    ``max_connections`` is the budget of every request but the message-queue long polls,
    which have their own ``long_poll_connections`` (a poll holds its connection ~50 s: a
    process needs one per scale set it serves). Connections open when first needed.
    Keep-alive equals the connection limit: httpcore closes an idle connection whenever the
    pool holds more connections than that, which would reconnect on every burst.
    """

    http2: bool = False
    max_connections: int = 128
    max_keepalive_connections: int = 128
    keepalive_expiry: float = 60.0
    long_poll_connections: int = 256


@dataclass
class _Lease:
    client: httpx.AsyncClient
    holders: int = 0


# Created lazily per loop; nothing here is instantiated at import time.
_Key = tuple[PoolSettings, NetworkSettings]
_leases: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Key, _Lease]] = (
    weakref.WeakKeyDictionary()
)
_transports: weakref.WeakKeyDictionary[httpx.AsyncClient, ShardedTransport] = (
    weakref.WeakKeyDictionary()
)


def _new_client(settings: PoolSettings, network: NetworkSettings) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_keepalive_connections,
        keepalive_expiry=settings.keepalive_expiry,
    )
    transport = ShardedTransport(
        limits,
        http2=settings.http2,
        network=network,
        long_poll_connections=settings.long_poll_connections,
    )
    client = httpx.AsyncClient(
        transport=transport, follow_redirects=False, trust_env=network.trust_env
    )
    # The service expects no Accept header except on the message queue, which sets its own.
    del client.headers["Accept"]
    _transports[client] = transport
    return client


def lane_stats(client: httpx.AsyncClient) -> Mapping[str, LaneStats]:
    """Per lane of a shared client: budget, use and waits for a connection (empty for a
    client this module did not create)."""
    transport = _transports.get(client)
    return transport.stats if transport is not None else {}


def lease(settings: PoolSettings, network: NetworkSettings) -> httpx.AsyncClient:
    """The shared client of the running loop for these settings; pair with :func:`release`."""
    pools = _leases.setdefault(asyncio.get_running_loop(), {})
    key = (settings, network)
    entry = pools.get(key)
    if entry is None or entry.client.is_closed:
        entry = pools[key] = _Lease(_new_client(settings, network))
    entry.holders += 1
    return entry.client


async def release(client: httpx.AsyncClient) -> None:
    """Give a leased client back; the last holder closes its connections."""
    pools = _leases.get(asyncio.get_running_loop(), {})
    for key, entry in list(pools.items()):
        if entry.client is client:
            entry.holders -= 1
            if entry.holders <= 0:
                del pools[key]
                await client.aclose()
            return


def open_pools() -> int:
    """How many shared clients are open on the running loop (for tests and diagnostics)."""
    return len(_leases.get(asyncio.get_running_loop(), {}))
