"""How many runners a scale set keeps warm (beyond its assigned jobs) at a given time.

The parts combine, the largest wins: ``min_runners``, ``min_idle``, the schedules whose window
holds now, and the adaptive target. The adaptive target is the number of arrivals within one
boot time that is not exceeded with probability ``confidence`` (Poisson at the forecast rate),
at most ``cap / 60`` runners, none while the last hour's warm runner-minutes reached the cap,
and it falls only after ``scale_down_delay_seconds`` (a forecast that wobbles would otherwise
remove runners that just finished booting and launch others a minute later).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gha_scalesets.contract.warm import BOOT_SECONDS, WarmPolicy
from gha_scalesets.listener.warm.forecast import DemandForecast, Forecast, poisson_quantile
from gha_scalesets.listener.warm.profile import DemandProfile

_HOUR = 3600.0


@dataclass(frozen=True)
class WarmTarget:
    """The decision at one moment: ``runners`` to keep warm, and what it came from."""

    runners: int
    floor: int  # min_runners, min_idle and the schedules
    adaptive: int
    forecast: Forecast | None  # None without an adaptive policy


class IdleLedger:
    """Warm runner-seconds spent, per minute over the last hour (the cost cap's measure)."""

    def __init__(self) -> None:
        self._minutes: deque[tuple[int, float]] = deque()
        self._last: tuple[float, int] | None = None  # (time, warm runners) of the last sample
        self.total_seconds = 0.0

    def sample(self, now: float, warm_runners: int) -> float:
        """``warm_runners`` exist from ``now`` on; returns the seconds spent since the last
        sample (the runners of that sample held until now)."""
        spent = 0.0
        if self._last is not None and now > self._last[0]:
            spent = (now - self._last[0]) * self._last[1]
            minute = int(now // 60)
            if self._minutes and self._minutes[-1][0] == minute:
                self._minutes[-1] = (minute, self._minutes[-1][1] + spent)
            else:
                self._minutes.append((minute, spent))
            self.total_seconds += spent
        self._last = (now, max(0, warm_runners))
        while self._minutes and self._minutes[0][0] <= int(now // 60) - 60:
            self._minutes.popleft()
        return spent

    def last_hour_minutes(self) -> float:
        return sum(seconds for _, seconds in self._minutes) / 60


class WarmCapacity:
    """The warm-capacity policy of one scale set; the scaler asks it at every decision."""

    def __init__(self, policy: WarmPolicy, min_runners: int, runtime: str) -> None:
        self.policy = policy
        self._min_runners = min_runners
        adaptive = policy.adaptive
        self.boot_seconds = (
            adaptive.boot_seconds
            if adaptive is not None and adaptive.boot_seconds is not None
            else BOOT_SECONDS.get(runtime, BOOT_SECONDS["ec2"])
        )
        self.forecast = DemandForecast(ZoneInfo(adaptive.time_zone)) if adaptive else None
        self.ledger = IdleLedger()
        self.arrivals = 0
        self._raised: deque[tuple[float, int]] = deque()  # (time, adaptive target) for hold

    def floor(self, now: float) -> int:
        """min_runners, min_idle and the schedules whose window holds ``now``."""
        scheduled = [
            s.min_idle
            for s in self.policy.schedules
            if s.window.matches(datetime.fromtimestamp(now, s.zone))
        ]
        return max(self._min_runners, self.policy.min_idle, *scheduled)

    def record_arrivals(self, now: float, count: int) -> None:
        self.arrivals += count
        if self.forecast is not None:
            self.forecast.record(now, count)

    def target(self, now: float) -> WarmTarget:
        floor = self.floor(now)
        adaptive = self.policy.adaptive
        if adaptive is None or self.forecast is None:
            return WarmTarget(floor, floor, 0, None)
        forecast = self.forecast.forecast(now, self.boot_seconds)
        wanted = poisson_quantile(forecast.rate * self.boot_seconds / 60, adaptive.confidence)
        cap = adaptive.max_idle_runner_minutes_per_hour
        held = self._hold(now, min(wanted, math.ceil(cap / 60)), adaptive.scale_down_delay_seconds)
        if self.ledger.last_hour_minutes() >= cap:
            self._raised.clear()  # the cap wins over the hold: spend nothing more this hour
            held = 0
        return WarmTarget(max(floor, held), floor, held, forecast)

    def _hold(self, now: float, wanted: int, delay: float) -> int:
        """The largest target of the last ``delay`` seconds: falls late, rises at once."""
        while self._raised and self._raised[-1][1] <= wanted:
            self._raised.pop()  # dominated by the new, later and at least as large target
        self._raised.append((now, wanted))
        while self._raised[0][0] < now - delay:
            self._raised.popleft()
        return self._raised[0][1]

    def budget_minutes_per_hour(self, now: float) -> float:
        """Warm runner-minutes per hour this policy may spend now (the idle-cost alarm's bound)."""
        adaptive = self.policy.adaptive
        cap = adaptive.max_idle_runner_minutes_per_hour if adaptive else 0.0
        return max(60.0 * self.floor(now), cap)

    # -- the learned profile ------------------------------------------------------------------

    def load_profile(self, data: dict[str, Any] | None) -> bool:
        """Continue from a stored profile; False if there is none usable."""
        if self.forecast is None or data is None:
            return False
        profile = DemandProfile.from_store(data, self.forecast.profile.time_zone)
        if profile is None:
            return False
        self.forecast.profile = profile
        return True

    def profile_to_save(self) -> dict[str, Any] | None:
        """The profile if it learned a slot since it was last saved, else ``None``."""
        if self.forecast is None or not self.forecast.profile_changed:
            return None
        return self.forecast.profile.to_store()

    def profile_saved(self) -> None:
        if self.forecast is not None:
            self.forecast.profile_changed = False
