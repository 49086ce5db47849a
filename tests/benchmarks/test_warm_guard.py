"""CI guard of the adaptive warm-capacity policy on a short trace (the quick warm scenario:
Tuesday's 08:00-11:00 morning ramp after Monday's, replayed through the real listener in
virtual time). Its idle runner-minutes and p95 job wait may not rise more than 20 % above
``benchmarks/baseline.json``, and in the same run it must wait no longer at p95 than
``min_runners=20`` with at most 60 % of its idle runner-minutes. Virtual time and a seeded
trace make the figures exact, not timings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import warm

BASELINE: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "benchmarks" / "baseline.json").read_text()
)
MARGIN = 1.2

pytestmark = pytest.mark.timeout(600)


def test_adaptive_idle_minutes_and_p95_within_baseline() -> None:
    result = warm.run(quick=True, policies=["adaptive", "min_runners=20"])
    adaptive, fixed = result["policies"]["adaptive"], result["policies"]["min_runners=20"]
    assert adaptive["jobs"] == fixed["jobs"] > 500  # the same trace
    assert adaptive["idle_runner_minutes"] <= (
        BASELINE["warm_adaptive_idle_runner_minutes"] * MARGIN
    )
    assert adaptive["wait_p95_seconds"] <= BASELINE["warm_adaptive_wait_p95_seconds"] * MARGIN
    assert adaptive["wait_p95_seconds"] <= fixed["wait_p95_seconds"]
    assert adaptive["idle_runner_minutes"] <= 0.6 * fixed["idle_runner_minutes"]
