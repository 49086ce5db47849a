"""Pure scaling decisions: how many runners to add, which idle ones to remove, how long to wait.

Nothing here does I/O, so every rule is unit-testable with plain values.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from gha_scalesets.listener.registry.base import RunnerRecord, RunnerState

# States in which a runner has no job and may be removed when surplus.
_IDLE_STATES = frozenset({RunnerState.LAUNCHED, RunnerState.IDLE})


def desired_runners(min_runners: int, max_runners: int, assigned_jobs: int) -> int:
    """The scale set's target: ``min(max, min + totalAssignedJobs)`` (scale on statistics)."""
    return max(0, min(max_runners, min_runners + max(0, assigned_jobs)))


def scale_up_count(desired: int, current: int, max_runners: int) -> int:
    """Runners to add now; never lifts the total above ``max_runners``."""
    return max(0, min(desired, max_runners) - current)


def surplus_idle(
    records: Iterable[RunnerRecord], desired: int, now: float, grace_seconds: float
) -> list[RunnerRecord]:
    """Idle runners to remove so that the count falls toward ``desired``.

    Only runners without a job and older than ``grace_seconds`` qualify (statistics lag behind
    launches, so a fresh runner is probably about to get the job it was made for); the newest
    qualifying runners go first, keeping warm ones that have waited longest for a job.
    """
    records = list(records)
    surplus = len([r for r in records if r.state is not RunnerState.DONE]) - desired
    if surplus <= 0:
        return []
    idle = [
        r
        for r in records
        if r.state in _IDLE_STATES and r.job_id is None and now - r.created_at >= grace_seconds
    ]
    idle.sort(key=lambda r: r.created_at, reverse=True)
    return idle[:surplus]


def runner_names(scale_set_name: str, first_sequence: int, count: int) -> list[str]:
    """Runner names ``<scale set>-<sequence>``; sequences come from the registry, never reused."""
    return [f"{scale_set_name}-{first_sequence + i}" for i in range(count)]


@dataclass
class Backoff:
    """Exponential backoff with full jitter after consecutive failures, capped at ``cap``."""

    base: float = 1.0
    cap: float = 60.0
    rng: random.Random | None = None
    failures: int = 0

    def failed(self) -> float:
        """Record a failure; returns the delay before the next attempt."""
        self.failures += 1
        ceiling = min(self.cap, self.base * 2 ** (self.failures - 1))
        return (self.rng or random).uniform(ceiling / 2, ceiling)

    def succeeded(self) -> None:
        self.failures = 0
