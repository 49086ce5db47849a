"""Async primitives of the simulator: a broadcast signal and a deadline scheduler.

Long polls (listener message queue, runner job polls) wait on a :class:`Signal` that state
changes fire; nothing polls in a loop. :class:`Timers` fires callbacks at clock deadlines
(job reassignment) and re-evaluates when the clock is advanced.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable

from gha_scalesets.simulator.clock import Clock

logger = logging.getLogger(__name__)


class Signal:
    """Wakes every current waiter on :meth:`notify`; later waiters wait for the next one."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> bool:
        """Wait for the next notification; ``False`` when ``seconds`` pass first."""
        try:
            async with asyncio.timeout(max(seconds, 0.0)):
                await self._event.wait()
        except TimeoutError:
            return False
        return True


class Timers:
    """Runs callbacks when the simulator clock passes their deadlines.

    Callbacks run on the event loop and must be synchronous; they should check that what
    they act on is still current (a job may have started since the timer was set).
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        clock.on_advance(self._wake.set)

    def schedule(self, deadline: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (deadline, next(self._seq), callback))
        self._wake.set()

    def clear(self) -> None:
        self._heap.clear()

    async def run(self) -> None:
        """Serve timers until cancelled."""
        while True:
            self._wake.clear()
            now = self._clock.now()
            while self._heap and self._heap[0][0] <= now:
                _, _, callback = heapq.heappop(self._heap)
                try:
                    callback()
                except Exception:  # one bad timer must not stop all later ones
                    logger.exception("simulator timer callback failed")
            delay = self._heap[0][0] - now if self._heap else None
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass
