"""The reduced fault matrix (issue #9): every scenario must keep every invariant.

Same engine as ``python -m benchmarks.chaos`` with CI sizes: 8-job bursts, max 4 runners,
1 s fault windows, 3 ``kill -9`` runs, one run of each high-availability fault with a 3 s lease.
A failure message lists the violated invariants.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.chaos_checks import ScenarioResult
from benchmarks.chaos_ha import HA_KINDS, SESSION_TTL_SECONDS, run_ha
from benchmarks.chaos_process import run_kill9, run_upgrade
from benchmarks.chaos_rebalance import run_rebalance
from benchmarks.chaos_scenarios import REDUCED, Scenario, run_scenario, scenarios

pytestmark = pytest.mark.timeout(240)


def _check(result: ScenarioResult) -> None:
    assert result.ok, f"{result.name}: {result.problems()}"
    assert result.completed == result.jobs > 0
    assert 0 < result.peak_runners <= result.max_runners


@pytest.mark.parametrize("scenario", scenarios(), ids=lambda s: s.name)
async def test_scenario_keeps_the_invariants(scenario: Scenario, aws: str) -> None:
    result = await run_scenario(scenario, REDUCED, moto_url=aws)
    _check(result)
    assert result.faults_injected > 0, "the fault never hit: the scenario tested nothing"


@pytest.mark.parametrize("run_index", range(REDUCED.kill_runs))
async def test_kill_9_at_a_random_point(run_index: int, aws: str, tmp_path: Path) -> None:
    _check(await run_kill9(REDUCED, aws, tmp_path, run_index))


async def test_sigterm_then_new_version_takes_over(aws: str, tmp_path: Path) -> None:
    result = await run_upgrade(REDUCED, aws, tmp_path)
    _check(result)
    assert result.extra["handover_seconds"] < 30


@pytest.mark.parametrize("kind", HA_KINDS)
async def test_standby_takes_over_from_a_failed_active(kind: str, aws: str, tmp_path: Path) -> None:
    result = await run_ha(kind, REDUCED, aws, tmp_path)
    _check(result)
    # Within the lease and a few polls, never by waiting for GitHub to expire a session.
    assert result.extra["takeover_seconds"] < SESSION_TTL_SECONDS / 4


async def test_a_replica_joins_and_another_leaves_mid_burst(aws: str, tmp_path: Path) -> None:
    result = await run_rebalance(REDUCED, aws, tmp_path)
    _check(result)
    assert result.extra["handovers"] > 0  # the joining replica got its share by handover
