"""Pure scaling rules: desired count, scale-up size, surplus selection, backoff."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from gha_scalesets.listener.registry.base import RunnerRecord, RunnerState
from gha_scalesets.listener.scaling import (
    Backoff,
    desired_runners,
    runner_names,
    scale_up_count,
    surplus_idle,
)


def record(name: str, state: RunnerState, created: float, job: str | None = None) -> RunnerRecord:
    return RunnerRecord(7, name, state, created_at=created, job_id=job)


def test_desired_is_min_plus_assigned_capped_at_max() -> None:
    assert desired_runners(0, 50, 0) == 0
    assert desired_runners(2, 50, 3) == 5
    assert desired_runners(2, 10, 100) == 10
    assert desired_runners(0, 10, -1) == 0


@given(
    min_r=st.integers(0, 20),
    extra=st.integers(0, 100),
    assigned=st.integers(0, 10_000),
    current=st.integers(0, 200),
)
def test_scale_up_never_exceeds_max(min_r: int, extra: int, assigned: int, current: int) -> None:
    max_r = min_r + extra
    desired = desired_runners(min_r, max_r, assigned)
    up = scale_up_count(desired, current, max_r)
    assert up >= 0
    assert current + up <= max(max_r, current)
    if current < desired:
        assert current + up == desired


def test_surplus_picks_only_old_idle_runners_newest_first() -> None:
    records = [
        record("busy", RunnerState.BUSY, 0, job="j1"),
        record("old-idle", RunnerState.IDLE, 10),
        record("newer-idle", RunnerState.LAUNCHED, 50),
        record("fresh", RunnerState.LAUNCHED, 95),  # inside the grace period
        record("reserved", RunnerState.RESERVED, 0),  # launch in flight
        record("done", RunnerState.DONE, 0),  # leaving anyway, not counted as surplus
    ]
    victims = surplus_idle(records, desired=2, now=100, grace_seconds=30)
    assert [v.runner_name for v in victims] == ["newer-idle", "old-idle"]
    assert surplus_idle(records, desired=5, now=100, grace_seconds=30) == []
    assert [v.runner_name for v in surplus_idle(records, 4, 100, 30)] == ["newer-idle"]


def test_runner_names_follow_sequences() -> None:
    assert runner_names("linux", 41, 3) == ["linux-41", "linux-42", "linux-43"]


def test_backoff_grows_with_jitter_and_resets() -> None:
    backoff = Backoff(base=1, cap=8, rng=random.Random(3))
    delays = [backoff.failed() for _ in range(6)]
    ceilings = [1, 2, 4, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    backoff.succeeded()
    assert backoff.failed() <= 1
