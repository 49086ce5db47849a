"""The client's sharded HTTP transport: concurrent requests spread over small pools, slots freed."""

from __future__ import annotations

import asyncio

import httpx

from gha_scalesets.scaleset.config_url import parse_config_url
from gha_scalesets.scaleset.sharding import SHARD_CONNECTIONS, ShardedTransport
from gha_scalesets.simulator.testing import SimulatorServer

ROUTE = "/api/v3/orgs/{org}/actions/runners/registration-token"
CONCURRENT = 3 * SHARD_CONNECTIONS // 2


async def test_concurrent_requests_spread_over_shards_and_release_them(
    sim: SimulatorServer,
) -> None:
    # The latency keeps every request in flight at once, so each needs its own connection.
    sim.set_faults(latency_ms=200)
    limits = httpx.Limits(max_connections=2 * SHARD_CONNECTIONS, max_keepalive_connections=None)
    transport = ShardedTransport(limits)
    api = parse_config_url(sim.config_url("acme")).api_base
    url = f"{api}/orgs/acme/actions/runners/registration-token"
    async with httpx.AsyncClient(transport=transport) as http:
        responses = await asyncio.gather(*(http.post(url) for _ in range(CONCURRENT)))
        assert all(r.status_code == 401 for r in responses)  # reached the service, no token
        per_shard = [len(shard.pool(None)._pool.connections) for shard in transport._shards]
        assert transport.shards == 2
        # Least-in-flight dispatch: both shards opened connections, none beyond its share.
        assert sorted(per_shard) == [CONCURRENT // 2, CONCURRENT - CONCURRENT // 2]
        assert transport._in_flight == [0, 0]  # every closed response gave its slot back
        await http.post(url)  # a kept connection is reused, not a new one opened
        assert [len(s.pool(None)._pool.connections) for s in transport._shards] == per_shard
    assert sim.stats()["requests"][f"POST {ROUTE}"] == CONCURRENT + 1
