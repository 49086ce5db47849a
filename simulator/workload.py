"""Seeded CI workloads to replay against the simulator: when jobs arrive and how long they run.

A :class:`Workload` describes a day of demand: Poisson arrivals whose rate follows a daily cycle
(quiet nights, a working-day bump, lighter weekends), bursts such as a monorepo push fanning out
``burst_jobs`` jobs at once (``bursts_per_day`` on each working day, at random working-hour
times), and job durations from a log-normal distribution. :func:`trace`
draws the jobs of a time span from it, the same ones for the same seed; :func:`replay` queues
them at their times on the running loop's clock (virtual time runs a day in minutes:
:mod:`simulator.virtual_time`).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from zoneinfo import ZoneInfo

DAY = 86_400.0


@dataclass(frozen=True)
class TraceJob:
    """One job: queued at ``at`` (epoch seconds), runs ``duration`` seconds."""

    at: float
    duration: float
    burst: bool = False


@dataclass(frozen=True)
class Workload:
    """The demand model; the defaults are a mid-sized organisation's weekday."""

    peak_jobs_per_minute: float = 12.0  # Poisson rate at the top of the working day
    night_fraction: float = 0.05  # the rate outside working hours, relative to the peak
    day_start_hour: float = 7.0  # local working day: the rate rises from here ...
    day_end_hour: float = 20.0  # ... peaks halfway and is back at night level here
    weekend_fraction: float = 0.25  # Saturday and Sunday, relative to a weekday
    bursts_per_day: int = 1  # monorepo pushes per working day, at random working-hour times
    burst_jobs: int = 200  # jobs of one push, queued at once
    duration_median_seconds: float = 240.0  # job durations: log-normal
    duration_sigma: float = 0.8
    min_duration_seconds: float = 20.0
    max_duration_seconds: float = 3600.0
    time_zone: str = "UTC"

    def rate_per_second(self, at: float) -> float:
        """The Poisson arrival rate at ``at`` (bursts excluded)."""
        local = datetime.fromtimestamp(at, ZoneInfo(self.time_zone))
        hour = local.hour + local.minute / 60 + local.second / 3600
        span = self.day_end_hour - self.day_start_hour
        bump = 0.0
        if self.day_start_hour <= hour <= self.day_end_hour:
            bump = math.sin(math.pi * (hour - self.day_start_hour) / span) ** 2
        level = self.night_fraction + (1 - self.night_fraction) * bump
        if local.weekday() >= 5:
            level *= self.weekend_fraction
        return self.peak_jobs_per_minute / 60 * level

    def duration(self, rng: random.Random) -> float:
        value = rng.lognormvariate(math.log(self.duration_median_seconds), self.duration_sigma)
        return min(self.max_duration_seconds, max(self.min_duration_seconds, value))

    def in_working_hours(self, at: float) -> bool:
        local = datetime.fromtimestamp(at, ZoneInfo(self.time_zone))
        return local.weekday() < 5 and self.day_start_hour <= local.hour < self.day_end_hour


def trace(workload: Workload, start: float, seconds: float, seed: int) -> list[TraceJob]:
    """The jobs arriving in ``[start, start + seconds)``, sorted by time."""
    rng = random.Random(seed)
    jobs = list(_poisson(workload, start, start + seconds, rng))
    jobs += _bursts(workload, start, start + seconds, rng)
    return sorted(jobs, key=lambda job: job.at)


def _poisson(
    workload: Workload, start: float, end: float, rng: random.Random
) -> Iterable[TraceJob]:
    # Thinning: candidates at the peak rate, each kept with probability rate(t) / peak.
    peak = workload.peak_jobs_per_minute / 60
    at = start
    while peak > 0:
        at += rng.expovariate(peak)
        if at >= end:
            return
        if rng.random() * peak < workload.rate_per_second(at):
            yield TraceJob(at, workload.duration(rng))


def _bursts(workload: Workload, start: float, end: float, rng: random.Random) -> list[TraceJob]:
    jobs: list[TraceJob] = []
    day = start - start % DAY  # whole UTC days: a span's bursts do not depend on its start
    while day < end:
        for _ in range(workload.bursts_per_day):
            # a working-hours moment of this day (days without working hours get none)
            candidates = [day + rng.uniform(0, DAY) for _ in range(200)]
            at = next((c for c in candidates if workload.in_working_hours(c)), None)
            if at is not None and start <= at < end:
                jobs += [
                    TraceJob(at, workload.duration(rng), burst=True)
                    for _ in range(workload.burst_jobs)
                ]
        day += DAY
    return jobs


async def replay(
    jobs: Iterable[TraceJob],
    queue: Callable[[list[TraceJob]], Awaitable[None] | None],
    clock: Callable[[], float],
) -> None:
    """Call ``queue`` with the jobs of each arrival time once ``clock`` reaches it."""
    for at, group in groupby(jobs, key=lambda job: job.at):
        delay = at - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        result = queue(list(group))
        if result is not None:
            await result
