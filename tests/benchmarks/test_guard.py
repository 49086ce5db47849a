"""CI guard: API calls per burst job and per idle scale set-hour may not rise >20 % over baseline,
nor runtime deletes per runner above it.

Runs the reduced scenarios (50-job burst, 10 idle scale sets) against the simulator on
127.0.0.1 and compares counts only, never time, with ``benchmarks/baseline.json``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import burst, idle
from benchmarks.__main__ import QUICK
from benchmarks.harness import ORG, PAT
from gha_scalesets.scaleset import Client, PatCredentials
from gha_scalesets.scaleset.auth import TokenCache
from tests.support.processes import SimulatorProcess

BASELINE: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "benchmarks" / "baseline.json").read_text()
)
MARGIN = 1.2

pytestmark = pytest.mark.timeout(120)


async def test_burst_api_calls_per_job_within_baseline() -> None:
    result = await burst.run(**QUICK["burst"])
    ours, upstream = result["ours"], result["upstream_equivalent"]
    jobs = result["parameters"]["jobs"]
    assert ours["jit_requests"] == jobs  # exactly one generatejitconfig per runner
    # No over-launch: one runner per job until every job completed.
    assert ours["runners_launched_total"] == ours["jit_requests_total"] == jobs
    assert ours["api_calls_per_job"] <= BASELINE["burst_api_calls_per_job"] * MARGIN
    # A count, not a rate: each finished runner costs exactly one delete request, no margin.
    assert ours["runtime_deletes_per_runner"] <= BASELINE["burst_runtime_deletes_per_runner"]
    assert ours["auth_chain_runs"] == 1
    assert upstream["jit_requests"] == jobs


async def test_idle_requests_per_scale_set_hour_within_baseline() -> None:
    result = await idle.run(**QUICK["idle"])
    ours, upstream = result["ours"], result["upstream_equivalent"]
    sets = result["parameters"]["scale_sets"]
    assert ours["requests_per_scale_set_hour"] <= (
        BASELINE["idle_requests_per_scale_set_hour"] * MARGIN
    )
    assert ours["auth_chain_runs_at_startup"] == 1  # one chain per org, not per scale set
    assert upstream["auth_chain_runs_at_startup"] == sets
    assert ours["requests_per_scale_set_hour"] < upstream["requests_per_scale_set_hour"]


async def test_idle_fails_when_scale_sets_are_polled_less_often_than_the_hold() -> None:
    """A poller that waits a hold between polls polls every two holds: the run must fail,
    not report half the requests as an efficiency."""
    hold, sets = 0.2, 5
    with SimulatorProcess(PAT, long_poll_seconds=hold) as sim:
        ids = await idle._create_scale_sets(sim, "slow", sets)
        started = sim.stats()
        client = Client(sim.config_url(ORG), PatCredentials(PAT), token_cache=TokenCache())
        sessions = [await client.create_message_session(i) for i in ids]

        async def slow(session: object) -> None:
            while True:
                await client.get_message(session)  # type: ignore[arg-type]
                await asyncio.sleep(hold)

        pollers = [asyncio.create_task(slow(s)) for s in sessions]
        try:
            with pytest.raises(
                idle.PollingStalled, match=r"polled every \d+\.\d+ s on average, not every 0\.2 s"
            ):
                await idle._measure(sim, sets, 4, hold, started, "a slow poller")
        finally:
            for poller in pollers:
                poller.cancel()
            await asyncio.gather(*pollers, return_exceptions=True)
            await client.aclose()
