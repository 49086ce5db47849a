"""The client against the simulator's rate limits, over HTTP: paced credentials share a burst
without a refusal, and a revoked credential's work moves to the other one."""

from __future__ import annotations

from collections.abc import Callable

from gha_scalesets.scaleset import Client, PatCredentials
from gha_scalesets.scaleset.auth import TokenCache
from gha_scalesets.scaleset.pacing import PacingSettings
from gha_scalesets.simulator.limits import pat_credential
from gha_scalesets.simulator.testing import SimulatorServer

PATS = ("ghp_limits_first", "ghp_limits_second")
WINDOW = 1.0  # "a minute", shrunk
PER_WINDOW = 8  # JIT configs per credential and window (5 points each)


def _client(sim: SimulatorServer, **pacing: object) -> Client:
    return Client(
        sim.config_url("acme"),
        [PatCredentials(pat) for pat in PATS],
        token_cache=TokenCache(),
        pacing=PacingSettings(**pacing),  # type: ignore[arg-type]
    )


def _limited(sim_factory: Callable[..., SimulatorServer]) -> SimulatorServer:
    sim = sim_factory(pats=list(PATS))
    rule = {"points_per_window": 5 * PER_WINDOW, "window_seconds": WINDOW, "block_seconds": 1}
    sim.set_limits(classes={"jit": rule})
    return sim


async def test_two_credentials_share_a_burst_without_a_refusal(
    sim_factory: Callable[..., SimulatorServer],
) -> None:
    sim = _limited(sim_factory)
    async with _client(sim, ceilings={"jit": PER_WINDOW}, window_seconds=WINDOW) as client:
        scale_set = await client.create_scale_set(name="shared", runner_group_id=1)
        names = [f"r-{i}" for i in range(4 * PER_WINDOW)]
        results = await client.generate_jit_configs(scale_set.id, names, concurrency=16)
    assert all(r.ok for r in results)
    stats = sim.limit_stats()
    for pat in PATS:
        jit = stats[pat_credential(pat)]["jit"]
        assert jit["refused"] == 0
        assert jit["requests"] == 2 * PER_WINDOW  # an even share


async def test_a_revoked_credential_hands_over_mid_burst(
    sim_factory: Callable[..., SimulatorServer],
) -> None:
    sim = sim_factory(pats=list(PATS))
    async with _client(sim) as client:
        scale_set = await client.create_scale_set(name="revoked", runner_group_id=1)
        first = await client.generate_jit_configs(scale_set.id, ["a-0", "a-1", "a-2", "a-3"])
        sim.revoke(pat_credential(PATS[0]))
        rest = await client.generate_jit_configs(scale_set.id, [f"b-{i}" for i in range(8)])
        usable = {lane["credential"]: lane["usable"] for lane in client.pacing_snapshot()}
    assert all(r.ok for r in first + rest)
    assert usable == {PatCredentials(PATS[0]).label: False, PatCredentials(PATS[1]).label: True}
    assert sim.stats()["runners"]["registered"] == 12
