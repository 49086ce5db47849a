"""Warm capacity: job wait vs. idle runners for each policy, on one replayed workload.

Every policy replays the same seeded trace (:mod:`simulator.workload`: Poisson arrivals on a
daily cycle, one 200-job monorepo burst per working day, log-normal durations) through the
real listener in virtual time (:mod:`benchmarks.replay`), with EC2's boot time. Measured over
one weekday (Tuesday, UTC): job wait p50/p95/p99, idle runner-minutes (booted, no job) per
1,000 jobs, and the overhead cost per 1,000 jobs (runner-minutes booting or idle, at the price
below). The adaptive policy also replays the Monday before, to learn its time-of-day profile
from its own history; the others start an hour early (they have nothing to learn).
"""

from __future__ import annotations

import copy
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from benchmarks.replay import Window, run_replay
from gha_scalesets.contract.warm import BOOT_SECONDS
from gha_scalesets.simulator.workload import Workload, trace

MONDAY = 1_772_409_600.0  # 2026-03-02 00:00 UTC
DAY, HOUR = 86_400.0, 3_600.0
RUNTIME = "ec2"
# On-demand m7i.large (2 vCPU, 8 GiB) in us-east-1: $0.1008 per hour.
PRICE_PER_RUNNER_MINUTE = 0.1008 / 60
MAX_RUNNERS = 400
# The cost cap: min_runners=20's spend, so never more warm runners than it keeps.
ADAPTIVE_CAP = 20 * 60

POLICIES: dict[str, dict[str, Any]] = {
    "min_runners=0": {},
    "min_runners=5": {"min_runners": 5},
    "min_runners=20": {"min_runners": 20},
    "min_idle=2": {"warm": {"min_idle": 2}},
    "min_idle=5": {"warm": {"min_idle": 5}},
    "schedule": {"warm": {"schedules": [{"cron": "* 8-18 * * mon-fri", "min_idle": 12}]}},
    "adaptive": {
        "warm": {"adaptive": {"max_idle_runner_minutes_per_hour": ADAPTIVE_CAP}},
    },
}
LEARNS = {"adaptive"}


def _windows(quick: bool) -> tuple[float, float, float]:
    """(history start, measured from, measured until)."""
    if quick:  # the morning ramp and its burst: 08:00-11:00, Monday to learn, Tuesday measured
        return MONDAY + 8 * HOUR, MONDAY + DAY + 8 * HOUR, MONDAY + DAY + 11 * HOUR
    return MONDAY, MONDAY + DAY, MONDAY + 2 * DAY


def _trace(workload: Workload, quick: bool, seed: int) -> list[Any]:
    history, measure_from, end = _windows(quick)
    if not quick:
        return trace(workload, history, end - history, seed)
    span = end - measure_from
    return trace(workload, history, span, seed) + trace(
        workload, measure_from - HOUR, span + HOUR, seed + 1
    )


def run(*, quick: bool = False, seed: int = 1, policies: list[str] | None = None) -> dict[str, Any]:
    """Replay the trace for each policy; returns parameters, per-policy figures and the
    adaptive policy's standing against ``min_runners=20``."""
    workload = Workload()
    boot = BOOT_SECONDS[RUNTIME]
    history, measure_from, end = _windows(quick)
    jobs = _trace(workload, quick, seed)
    names = policies or list(POLICIES)
    # Replays are independent and deterministic: one process each, as many as there are cores.
    with ProcessPoolExecutor(max_workers=min(len(names), max(2, os.cpu_count() or 1))) as pool:
        futures = {
            name: pool.submit(_replay_policy, name, jobs, Window(history, measure_from, end), boot)
            for name in names
        }
        results = {name: future.result() for name, future in futures.items()}
    return {
        "parameters": {
            "workload": vars(workload),
            "seed": seed,
            "measured": "Tuesday 08:00-11:00 UTC" if quick else "Tuesday 00:00-24:00 UTC",
            "history": "Monday, same hours" if quick else "Monday (the adaptive policy)",
            "runtime": RUNTIME,
            "runner_boot_seconds": boot,
            "max_runners": MAX_RUNNERS,
            "price_per_runner_minute": round(PRICE_PER_RUNNER_MINUTE, 5),
            "price": "on-demand m7i.large, us-east-1, $0.1008 per hour",
        },
        "policies": results,
        "adaptive_vs_min_runners_20": _standing(results),
    }


def _replay_policy(name: str, jobs: list[Any], window: Window, boot: float) -> dict[str, Any]:
    scale_set = {"max_runners": MAX_RUNNERS, **copy.deepcopy(POLICIES[name])}
    if "adaptive" in scale_set.get("warm", {}):
        scale_set["warm"]["adaptive"]["boot_seconds"] = boot
    start = window.start if name in LEARNS else window.measure_from - HOUR
    replayed = run_replay(
        scale_set, jobs, Window(start, window.measure_from, window.end), boot_seconds=boot
    )
    return {"config": POLICIES[name], **replayed.summary(PRICE_PER_RUNNER_MINUTE)}


def _standing(results: dict[str, Any]) -> dict[str, Any]:
    adaptive, fixed = results.get("adaptive"), results.get("min_runners=20")
    if adaptive is None or fixed is None:
        return {}
    idle = fixed["idle_runner_minutes"]
    return {
        "wait_p95_seconds": [adaptive["wait_p95_seconds"], fixed["wait_p95_seconds"]],
        "idle_runner_minutes_ratio": round(adaptive["idle_runner_minutes"] / idle, 3)
        if idle
        else None,
        "target": "p95 at most min_runners=20's, idle at most a third of it",
    }
