"""CI guard: one listener process keeps 500 scale sets polled and launches their jobs.

The scale benchmark's own run (``benchmarks.scale.run_one``: the listener in its own process,
the simulator in another) on a short, time-scaled window: a 3 s hold instead of 50 s, so 500
scale sets poll at 2.5 times the rate of 2,000 under GitHub's hold. Counts only: polls per scale
set per hold (a stalled listener polls less often), jobs launched, sessions deleted at stop.
"""

from __future__ import annotations

import pytest

from benchmarks import scale

pytestmark = pytest.mark.timeout(240)

SETS = 500
HOLD = 3.0
PROBES = 5


async def test_500_scale_sets_in_one_process_stay_polled_and_launch_their_jobs() -> None:
    result = await scale.run_one(SETS, window=2 * HOLD, probes=PROBES, hold=HOLD, seed=1)
    per_hold = result["polls_per_scale_set_hour"] * HOLD / 3600
    assert 0.95 <= per_hold <= 1.05, result  # once per hold: no set left unpolled
    assert result["jobs_launched"] == PROBES  # a job on a random set is launched
    assert result["sessions_deleted_at_stop"] == SETS
