"""Warm-capacity settings of one scale set, and every rule that validates them.

The listener's ``scale_sets[].warm`` section and the component's ``ListenerScaleSet.warm`` are
this model; :func:`warm_problems` adds the checks that need the scale set's ``max_runners``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gha_scalesets.contract.cron import CronError, CronWindow

# How long a runner takes from launch to taking a job, by runtime, when the adaptive policy is
# not told (docs/listener.md, "Warm capacity"): EC2 1.5-4 min from queue to job start
# (terraform-aws-github-runner #1766), Fargate ~60 s for a 250 MB image, Kubernetes 20-30 s
# for a pod on a node that exists (ARC #3534; 2-4 min when a node must join: set it then).
BOOT_SECONDS = {"ec2": 150.0, "ecs": 60.0, "k8s": 25.0, "local": 5.0}


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from None
    return name


def _cron(expression: str) -> str:
    try:
        CronWindow.parse(expression)
    except CronError as exc:
        raise ValueError(f"cron {exc}") from None
    return expression


TimeZone = Annotated[str, AfterValidator(_zone)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WarmSchedule(_Strict):
    """Keep ``min_idle`` runners warm during the minutes ``cron`` matches in ``time_zone``."""

    cron: Annotated[str, AfterValidator(_cron)]
    min_idle: int = Field(ge=0)
    time_zone: TimeZone = "UTC"

    @cached_property
    def window(self) -> CronWindow:
        return CronWindow.parse(self.cron)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


class AdaptiveWarmth(_Strict):
    """Warm runners from a demand forecast, within a cost cap (docs/listener.md)."""

    # The cap: warm runners are at most cap / 60 at a time, and none are added by the forecast
    # once the last hour's warm (idle) runner-minutes reached it.
    max_idle_runner_minutes_per_hour: float = Field(gt=0)
    # Launch to ready; None: the runtime's figure in BOOT_SECONDS.
    boot_seconds: float | None = Field(default=None, gt=0, le=3600)
    # Warm enough runners for the arrivals within one boot time with this probability.
    confidence: float = Field(default=0.95, ge=0.5, le=0.999)
    # The learned profile's days (weekdays and weekends) and hours are in this zone.
    time_zone: TimeZone = "UTC"
    # A lower forecast removes warm runners only after it stayed lower this long.
    scale_down_delay_seconds: float = Field(default=600.0, ge=0, le=3600)


class WarmPolicy(_Strict):
    """Runners kept warm on top of those the assigned jobs need; all parts combine (the
    largest wins). Empty: none beyond ``min_runners``."""

    min_idle: int = Field(default=0, ge=0)
    schedules: tuple[WarmSchedule, ...] = ()
    adaptive: AdaptiveWarmth | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.min_idle or self.schedules or self.adaptive)


def warm_problems(policy: WarmPolicy, max_runners: int) -> list[tuple[str, str]]:
    """What is wrong with ``policy`` for a scale set of at most ``max_runners`` runners, as
    (key within ``warm``, message) pairs."""
    floors = [("min_idle", policy.min_idle)] + [
        (f"schedules[{i}].min_idle", s.min_idle) for i, s in enumerate(policy.schedules)
    ]
    return [
        (key, f"{value} is above max_runners ({max_runners}): no more runners can be warm")
        for key, value in floors
        if value > max_runners
    ]
