"""Demand forecast of one scale set: job arrivals expected within the next runner boot time.

Two views, the larger wins: the recent arrival rate (the mean of the last 5 and the last 30
minutes) reacts to what happens now; the learned time-of-day profile (:mod:`.profile`), read at
now and at now + boot time, sees a daily ramp coming before it starts. A minute's arrivals
count at most four times the rate already expected (and at least 4; a real rise passes within
minutes): a monorepo push of 200 jobs is not a rate that will go on, and no warm pool could
absorb it anyway.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from statistics import NormalDist
from zoneinfo import ZoneInfo

from gha_scalesets.listener.warm.profile import SLOT_MINUTES, DemandProfile

SHORT_WINDOW_MINUTES = 5
LONG_WINDOW_MINUTES = 30
_BURST_FACTOR = 4.0
_MIN_BURST_CAP = 4.0
# A slot observed for less than this (a takeover mid-slot) teaches the profile nothing.
_MIN_OBSERVED_SECONDS = 5 * 60


def poisson_quantile(mean: float, probability: float) -> int:
    """The smallest ``k`` with P(N <= k) >= ``probability`` for N ~ Poisson(``mean``)."""
    if mean <= 0:
        return 0
    if mean > 500:  # normal approximation: the exact sum underflows and is slow
        z = NormalDist().inv_cdf(probability)
        return max(0, math.ceil(mean + z * math.sqrt(mean) - 0.5))
    term = cumulative = math.exp(-mean)
    k = 0
    while cumulative < probability:
        k += 1
        term *= mean / k
        cumulative += term
    return k


@dataclass(frozen=True)
class Forecast:
    """Expected arrivals per minute (``rate``), and its parts, at one moment."""

    rate: float
    recent: float
    profile: float | None


class DemandForecast:
    """Counts arrivals per minute, learns the profile slot by slot, and forecasts."""

    def __init__(self, zone: ZoneInfo, profile: DemandProfile | None = None) -> None:
        self._zone = zone
        self.profile = profile or DemandProfile(time_zone=zone.key)
        self._minutes: deque[tuple[int, float]] = deque()  # (epoch minute, counted arrivals)
        self._slot: int | None = None  # epoch slot being observed
        self._slot_arrivals = 0.0
        self._slot_observed_from = 0.0
        self.profile_changed = False  # a slot was learned since the last save

    def _local(self, now: float) -> datetime:
        return datetime.fromtimestamp(now, self._zone)

    def _recent(self, now: float, minutes: int) -> float:
        first = int(now // 60) - minutes + 1
        return sum(count for minute, count in self._minutes if minute >= first) / minutes

    def _expected_per_minute(self, now: float) -> float:
        profile = self.profile.rate(self._local(now)) or 0.0
        recent = (self._recent(now, m) for m in (SHORT_WINDOW_MINUTES, LONG_WINDOW_MINUTES))
        return max(*recent, profile)

    def record(self, now: float, count: int = 1) -> None:
        """``count`` jobs arrived (were assigned to the scale set) at ``now``."""
        self.advance(now)
        minute = int(now // 60)
        cap = max(_MIN_BURST_CAP, _BURST_FACTOR * self._expected_per_minute(now))
        if self._minutes and self._minutes[-1][0] == minute:
            counted = self._minutes[-1][1]
            added = max(0.0, min(count, cap - counted))
            self._minutes[-1] = (minute, counted + added)
        else:
            added = min(float(count), cap)
            self._minutes.append((minute, added))
        self._slot_arrivals += added

    def advance(self, now: float) -> None:
        """Drop minutes out of the windows; learn the slot that ``now`` has ended."""
        oldest = int(now // 60) - LONG_WINDOW_MINUTES
        while self._minutes and self._minutes[0][0] <= oldest:
            self._minutes.popleft()
        slot = int(now // (SLOT_MINUTES * 60))
        if self._slot is None:
            self._slot, self._slot_observed_from = slot, now
            return
        if slot == self._slot:
            return
        slot_start = self._slot * SLOT_MINUTES * 60
        observed = slot_start + SLOT_MINUTES * 60 - self._slot_observed_from
        if observed >= _MIN_OBSERVED_SECONDS:
            self.profile.learn(self._local(slot_start), self._slot_arrivals * 60 / observed)
            self.profile_changed = True
        # Slots with no call at all (the process was stopped) stay unknown: nobody watched.
        self._slot, self._slot_arrivals = slot, 0.0
        self._slot_observed_from = slot * SLOT_MINUTES * 60

    def forecast(self, now: float, horizon_seconds: float) -> Forecast:
        """Arrivals per minute to expect from ``now`` to ``now + horizon_seconds``."""
        self.advance(now)
        recent = (
            self._recent(now, SHORT_WINDOW_MINUTES) + self._recent(now, LONG_WINDOW_MINUTES)
        ) / 2
        ahead = [self.profile.rate(self._local(t)) for t in (now, now + horizon_seconds)]
        known = [rate for rate in ahead if rate is not None]
        profile = max(known) if known else None
        return Forecast(max(recent, profile or 0.0), recent, profile)
