"""Demand profiles for the profile store tests (the fast tier's stores and the real API server)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gha_scalesets.listener.warm.profile import DemandProfile


def a_profile(rate: float) -> dict[str, Any]:
    """A stored profile that learned ``rate`` jobs per hour on one Tuesday at 09:00 UTC."""
    profile = DemandProfile(time_zone="UTC")
    profile.learn(datetime(2026, 3, 3, 9, 0, tzinfo=UTC), rate)
    return profile.to_store()
