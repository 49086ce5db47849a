"""Each warm-capacity policy on an injected clock: min_idle, schedules, adaptive (forecast,
learned profile, cost cap, hold-down), and the scaler's desired count built from them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from gha_scalesets.contract.cron import CronError, CronWindow
from gha_scalesets.contract.warm import WarmPolicy
from gha_scalesets.listener.config import ListenerSettings, ScaleSetConfig
from gha_scalesets.listener.metrics import ListenerMetrics
from gha_scalesets.listener.registry.memory import MemoryRegistry
from gha_scalesets.listener.scaler import Scaler
from gha_scalesets.listener.warm import WarmCapacity
from gha_scalesets.listener.warm.forecast import poisson_quantile
from gha_scalesets.scaleset import ScaleSet, Statistics

TUESDAY_9 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC).timestamp()
SATURDAY_9 = datetime(2026, 3, 7, 9, 0, tzinfo=UTC).timestamp()
HOUR, DAY = 3600.0, 86400.0


def capacity(min_runners: int = 0, **warm: Any) -> WarmCapacity:
    return WarmCapacity(WarmPolicy.model_validate(warm), min_runners, "ec2")


ADAPTIVE = {"max_idle_runner_minutes_per_hour": 6000, "boot_seconds": 120}


def feed(policy: WarmCapacity, start: float, seconds: float, per_minute: float) -> float:
    """Arrivals at a steady rate (one every 60/per_minute s, none at 0); the policy is asked
    every 10 s, as the scaler's tick does. Returns the end time."""
    now, gap = start, 60 / per_minute if per_minute else float("inf")
    due = start if per_minute else gap
    while now < start + seconds:
        while due <= now:
            policy.record_arrivals(due, 1)
            due += gap
        policy.target(now)
        now += 10
    return now


# -- cron windows ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "when", "matches"),
    [
        ("* 8-18 * * mon-fri", datetime(2026, 3, 3, 8, 0), True),
        ("* 8-18 * * mon-fri", datetime(2026, 3, 3, 18, 59), True),
        ("* 8-18 * * mon-fri", datetime(2026, 3, 3, 19, 0), False),
        ("* 8-18 * * mon-fri", datetime(2026, 3, 7, 12, 0), False),  # Saturday
        ("*/15 * * * *", datetime(2026, 3, 3, 12, 30), True),
        ("*/15 * * * *", datetime(2026, 3, 3, 12, 31), False),
        ("0-29 9 1 jan,mar *", datetime(2026, 3, 1, 9, 29), True),
        ("* * 1 * sun", datetime(2026, 3, 8, 10, 0), True),  # both day fields: either one
        ("* * 1 * 7", datetime(2026, 3, 2, 10, 0), False),  # a Monday, not the 1st
    ],
)
def test_cron_window_matches_like_cron(expression: str, when: datetime, matches: bool) -> None:
    assert CronWindow.parse(expression).matches(when) is matches


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "has 4 fields"),
        ("60 * * * *", "minute 60 is out of range 0-59"),
        ("* 9-5 * * *", "hour range '9-5' runs backwards"),
        ("* * * * funday", "day of week 'funday' is not a number or a name"),
        ("*/0 * * * *", "step '0' must be a positive number"),
        ("1,,2 * * * *", "empty list item"),
    ],
)
def test_cron_errors_name_the_field(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        CronWindow.parse(expression)


@pytest.mark.parametrize(
    ("warm", "message"),
    [
        ({"schedules": [{"cron": "* 25 * * *", "min_idle": 1}]}, "cron hour 25 is out of range"),
        (
            {"schedules": [{"cron": "* * * * *", "min_idle": 1, "time_zone": "Europe/Berln"}]},
            "unknown time zone 'Europe/Berln'",
        ),
        ({"min_idle": 11}, r"warm.min_idle: 11 is above max_runners \(10\)"),
        (
            {"schedules": [{"cron": "* * * * *", "min_idle": 50}]},
            r"warm.schedules\[0\].min_idle: 50 is above max_runners",
        ),
        ({"adaptive": {}}, "max_idle_runner_minutes_per_hour"),
        ({"adaptive": {"max_idle_runner_minutes_per_hour": 60, "confidence": 1}}, "confidence"),
        ({"idle": 3}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_policies_are_refused_with_the_key(warm: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ScaleSetConfig(name="x", max_runners=10, warm=warm)


# -- floors ------------------------------------------------------------------------------


def test_min_idle_is_a_constant_floor_and_min_runners_still_counts() -> None:
    assert capacity(min_idle=3).target(TUESDAY_9).runners == 3
    assert capacity(min_runners=5, min_idle=3).target(TUESDAY_9).runners == 5
    assert capacity().target(TUESDAY_9).runners == 0


def test_schedule_floor_follows_its_time_zone_and_weekdays() -> None:
    policy = capacity(
        min_idle=1,
        schedules=[
            {"cron": "* 8-17 * * mon-fri", "min_idle": 10, "time_zone": "America/New_York"},
            {"cron": "* 9-11 * * *", "min_idle": 4},
        ],
    )
    # 09:00 UTC is 04:00 in New York: only the UTC rule holds
    assert policy.target(TUESDAY_9).runners == 4
    assert policy.target(TUESDAY_9 + 5 * HOUR).runners == 10  # 09:00 in New York
    assert policy.target(TUESDAY_9 + 14 * HOUR).runners == 1  # 18:00 there: min_idle
    assert policy.target(SATURDAY_9 + 5 * HOUR).runners == 1  # weekend, after 11 UTC


# -- adaptive ----------------------------------------------------------------------------


def test_poisson_quantile() -> None:
    assert poisson_quantile(0, 0.95) == 0
    assert poisson_quantile(1.0, 0.5) == 1
    assert poisson_quantile(10, 0.95) == 15  # P(N <= 15) = 0.951
    assert poisson_quantile(1000, 0.95) == pytest.approx(1052, abs=1)


def test_adaptive_warms_for_the_arrivals_within_one_boot_time() -> None:
    policy = capacity(adaptive=ADAPTIVE)
    assert policy.target(TUESDAY_9).runners == 0  # nothing seen, nothing learned
    now = feed(policy, TUESDAY_9, 30 * 60, per_minute=6)
    target = policy.target(now)
    assert target.forecast is not None and target.forecast.rate == pytest.approx(6, rel=0.05)
    # 6 per minute over a 2-minute boot: 12 expected; 95 % of the time at most 18
    assert target.runners == poisson_quantile(12, 0.95) == 18


def test_a_burst_does_not_become_a_rate() -> None:
    policy = capacity(adaptive=ADAPTIVE)
    now = feed(policy, TUESDAY_9, 30 * 60, per_minute=1)
    policy.record_arrivals(now, 200)  # a monorepo push
    forecast = policy.target(now + 10).forecast
    assert forecast is not None and forecast.rate < 2


def test_learned_profile_warms_ahead_of_the_daily_ramp() -> None:
    policy = capacity(adaptive={**ADAPTIVE, "scale_down_delay_seconds": 0})
    # Monday: quiet until 09:00, then 10 jobs per minute until 10:00
    monday_8 = TUESDAY_9 - DAY - HOUR
    now = feed(policy, monday_8, HOUR, per_minute=0)
    now = feed(policy, now, HOUR, per_minute=10)
    now = feed(policy, now, DAY - 2 * HOUR - 5 * 60, per_minute=0)
    # Tuesday: nothing has arrived for hours; at 08:00 nothing is warmed ...
    assert policy.target(TUESDAY_9 - HOUR).runners == 0
    # ... at 08:58:30 the ramp is within one boot time: warm for it before it starts (at
    # least for 10 arrivals per boot: 09:00-09:15 is read weighted with its quiet neighbour).
    assert policy.target(TUESDAY_9 - 90).runners >= poisson_quantile(10, 0.95)
    # ... and a Saturday at 09:00 is not a Monday.
    assert policy.forecast is not None
    saturday = datetime.fromtimestamp(SATURDAY_9 + 60, UTC)
    assert policy.forecast.profile.rate(saturday) is None


def test_cost_cap_bounds_the_adaptive_target_and_stops_it_once_spent() -> None:
    policy = capacity(adaptive={**ADAPTIVE, "max_idle_runner_minutes_per_hour": 300})
    now = feed(policy, TUESDAY_9, 30 * 60, per_minute=6)
    assert policy.target(now).runners == 5  # 300 minutes per hour: 5 runners at a time
    for second in range(0, 3600, 60):  # 6 warm runners held for an hour: 360 minutes spent
        policy.ledger.sample(now + second, 6)
    assert policy.ledger.last_hour_minutes() >= 300
    assert policy.target(now + 3600).adaptive == 0
    assert policy.budget_minutes_per_hour(now) == 300


def test_floors_are_kept_when_the_cap_is_spent() -> None:
    policy = capacity(min_idle=2, adaptive={**ADAPTIVE, "max_idle_runner_minutes_per_hour": 60})
    for second in range(0, 3600, 60):
        policy.ledger.sample(TUESDAY_9 + second, 3)
    assert policy.target(TUESDAY_9 + 3600).runners == 2


def test_a_lower_forecast_lowers_the_target_only_after_the_delay() -> None:
    policy = capacity(adaptive={**ADAPTIVE, "scale_down_delay_seconds": 600})
    now = feed(policy, TUESDAY_9, 30 * 60, per_minute=6)
    high = policy.target(now).runners
    now = feed(policy, now, 40 * 60, per_minute=0.1)  # demand gone for 40 minutes
    assert policy.target(now).runners < high
    policy2 = capacity(adaptive={**ADAPTIVE, "scale_down_delay_seconds": 600})
    later = feed(policy2, TUESDAY_9, 30 * 60, per_minute=6)
    before = policy2.target(later).runners
    # 5 minutes without arrivals: the short window drops, the hold keeps the target
    assert policy2.target(later + 300).runners == before


# -- the scaler's desired count ------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def scaler(clock: Clock, **scale_set: Any) -> Scaler:
    settings = ListenerSettings(
        github_config_url="https://github.com/acme",
        credentials={"token": "x"},
        scale_sets=[{"name": "warm", **scale_set}],
        metrics_port=None,
    )
    return Scaler(
        ScaleSet(id=7, name="warm"),
        settings.scale_sets[0],
        settings,
        client=None,  # type: ignore[arg-type]  # no call reaches GitHub here
        registry=MemoryRegistry(clock=clock),
        runtime=None,  # type: ignore[arg-type]
        metrics=ListenerMetrics(settings.github_config_url),
        clock=clock,
    )


def stats(assigned: int, running: int = 0) -> Statistics:
    return Statistics(total_assigned_jobs=assigned, total_running_jobs=running)


async def test_desired_is_assigned_jobs_plus_warm_within_max() -> None:
    clock = Clock(TUESDAY_9)
    fixed = scaler(clock, max_runners=10, warm={"min_idle": 3})
    assert fixed.set_statistics(stats(0)) == 3
    assert fixed.set_statistics(stats(4, 2)) == 7
    assert fixed.set_statistics(stats(9)) == 10
    scheduled = scaler(
        clock, max_runners=50, warm={"schedules": [{"cron": "* 8-18 * * *", "min_idle": 8}]}
    )
    assert scheduled.set_statistics(stats(2)) == 10
    clock.now += 10 * HOUR  # 19:00: the window closed
    assert scheduled.set_statistics(stats(2)) == 2


async def test_scaler_counts_arrivals_into_the_adaptive_forecast() -> None:
    clock = Clock(TUESDAY_9)
    adaptive = scaler(clock, max_runners=100, warm={"adaptive": ADAPTIVE})
    for _ in range(180):  # 6 per minute for 30 minutes
        adaptive.jobs_assigned(1)
        clock.now += 10
    assert adaptive.set_statistics(stats(0)) == 18
    arrivals = adaptive._metrics.registry.get_sample_value(
        "gha_listener_job_arrivals_total", {"name": "warm"}
    )
    assert arrivals == 180
