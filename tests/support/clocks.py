"""Clocks that move only when the code under test sleeps on them (or a test moves them)."""

from __future__ import annotations

import asyncio
import time


class FakeClock:
    """Seconds starting at ``now`` that move only by ``sleep`` (each recorded) or ``advance``."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.now += seconds


class OffsetClock:
    """Wall time plus an offset a test moves forward (for code that also waits for real I/O)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
