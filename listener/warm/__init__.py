"""Warm capacity: runners kept ready ahead of demand (min_idle, schedules, adaptive)."""

from gha_scalesets.listener.warm.config import (
    BOOT_SECONDS,
    AdaptiveWarmth,
    WarmPolicy,
    WarmSchedule,
    warm_problems,
)
from gha_scalesets.listener.warm.policy import WarmCapacity, WarmTarget
from gha_scalesets.listener.warm.profile import ProfileStore

__all__ = [
    "BOOT_SECONDS",
    "AdaptiveWarmth",
    "ProfileStore",
    "WarmCapacity",
    "WarmPolicy",
    "WarmSchedule",
    "WarmTarget",
    "warm_problems",
]
