"""The simulator's notion of "now": wall-clock seconds plus an offset that tests can advance.

Every expiry decision (token lifetimes, session TTL, job reassignment deadlines, rate-limit
windows) reads this clock, so a test can jump an hour ahead instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Clock:
    """Epoch seconds (``time.time()`` by default) shifted by :meth:`advance`."""

    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self._offset = 0.0
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> float:
        return self._source() + self._offset

    def advance(self, seconds: float) -> None:
        """Jump forward; listeners (the timer scheduler) re-check their deadlines."""
        if seconds < 0:
            raise ValueError("the simulator clock only moves forward")
        self._offset += seconds
        for listener in self._listeners:
            listener()

    def rewind_offset(self) -> None:
        """Drop any advance (used by a full simulator reset)."""
        self._offset = 0.0

    def on_advance(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)
