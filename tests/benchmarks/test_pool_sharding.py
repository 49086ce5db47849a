"""The client's sharded HTTP transport: concurrent requests spread over small pools, slots freed,
and lanes: long polls have their own connection budget, waits for a connection are measured."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gha_scalesets.scaleset.config_url import parse_config_url
from gha_scalesets.scaleset.sharding import (
    API_LANE,
    LANE_EXTENSION,
    LONG_POLL_LANE,
    SHARD_CONNECTIONS,
    ShardedTransport,
)
from gha_scalesets.simulator.testing import SimulatorServer

ROUTE = "/api/v3/orgs/{org}/actions/runners/registration-token"
SLOW = f"POST {ROUTE}"
CONCURRENT = 3 * SHARD_CONNECTIONS // 2


def _urls(sim: SimulatorServer) -> tuple[str, str]:
    """A route the tests slow down, and one they leave fast."""
    api = parse_config_url(sim.config_url("acme")).api_base
    return f"{api}/orgs/acme/actions/runners/registration-token", f"{api}/orgs/acme"


async def test_concurrent_requests_spread_over_shards_and_release_them(
    sim: SimulatorServer,
) -> None:
    # The latency keeps every request in flight at once, so each needs its own connection.
    sim.set_faults(latency_ms=200)
    limits = httpx.Limits(max_connections=2 * SHARD_CONNECTIONS, max_keepalive_connections=None)
    transport = ShardedTransport(limits)
    url, _ = _urls(sim)
    async with httpx.AsyncClient(transport=transport) as http:
        responses = await asyncio.gather(*(http.post(url) for _ in range(CONCURRENT)))
        assert all(r.status_code == 401 for r in responses)  # reached the service, no token
        per_shard = [len(shard.pool(None)._pool.connections) for shard in transport.shards()]
        assert len(transport.shards()) == 2
        # Least-in-flight dispatch: both shards opened connections, none beyond its share.
        assert sorted(per_shard) == [CONCURRENT // 2, CONCURRENT - CONCURRENT // 2]
        assert transport.in_flight() == [0, 0]  # every closed response gave its slot back
        await http.post(url)  # a kept connection is reused, not a new one opened
        assert [len(s.pool(None)._pool.connections) for s in transport.shards()] == per_shard
    assert sim.stats()["requests"][f"POST {ROUTE}"] == CONCURRENT + 1


async def test_long_polls_never_take_the_connections_of_other_requests(
    sim: SimulatorServer,
) -> None:
    """Twice as many slow "polls" as their lane holds: the excess waits in its lane (and the
    wait is counted) while requests of the api lane find a free connection at once."""
    sim.set_faults(latency_ms=400, routes=[SLOW])
    limits = httpx.Limits(max_connections=SHARD_CONNECTIONS, max_keepalive_connections=None)
    transport = ShardedTransport(limits, long_poll_connections=4)
    slow, fast = _urls(sim)
    poll = {LANE_EXTENSION: LONG_POLL_LANE}
    async with httpx.AsyncClient(transport=transport) as http:
        polls = [asyncio.create_task(http.post(slow, extensions=poll)) for _ in range(8)]
        while transport.stats[LONG_POLL_LANE].waiting < 4:
            await asyncio.sleep(0.01)
        others = await asyncio.gather(*(http.get(fast) for _ in range(SHARD_CONNECTIONS)))
        assert transport.stats[LONG_POLL_LANE].in_use == 4  # the polls still hold their lane
        await asyncio.gather(*polls)
    api, polls_lane = transport.stats[API_LANE], transport.stats[LONG_POLL_LANE]
    assert all(r.status_code == 404 for r in others)  # answered (no such org route)
    assert api.requests == SHARD_CONNECTIONS and api.wait_seconds == 0.0
    assert polls_lane.requests == 8 and polls_lane.capacity == 4
    waited = dict(polls_lane.cumulative_buckets())
    assert waited["0.001"] == 4 and waited["+Inf"] == 8  # four waited for a connection
    assert polls_lane.wait_seconds > 0 and polls_lane.in_use == polls_lane.waiting == 0


async def test_a_request_that_waits_past_its_pool_timeout_fails_and_is_counted(
    sim: SimulatorServer,
) -> None:
    sim.set_faults(latency_ms=400, routes=[SLOW])
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=None)
    transport = ShardedTransport(limits)
    slow, _ = _urls(sim)
    async with httpx.AsyncClient(transport=transport) as http:
        holder = asyncio.create_task(http.post(slow))
        while transport.stats[API_LANE].in_use < 1:
            await asyncio.sleep(0.01)
        with pytest.raises(httpx.PoolTimeout, match="no free connection in the 'api' lane"):
            await http.post(slow, timeout=httpx.Timeout(5.0, pool=0.05))
        assert (await holder).status_code == 401
    assert transport.stats[API_LANE].timeouts == 1
