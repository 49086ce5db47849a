"""Virtual time for asyncio: a simulated day in the seconds it takes to compute it.

:class:`VirtualTimeLoop` is an event loop whose clock jumps to the next timer whenever nothing
is ready to run, instead of sleeping. Everything that waits through the loop (``asyncio.sleep``,
timeouts, the simulator's long polls and timers, the listener's ticks and backoffs) then takes
no wall time. It needs code without real I/O: pair it with in-process transports
(:class:`~simulator.inprocess.InProcessSimulator` serves HTTP over ``httpx.ASGITransport``).
A selector that reports ready file descriptors is still served first (the loop's self-pipe).

    loop = VirtualTimeLoop()
    loop.run_until_complete(main())   # loop.time() counts seconds from 0
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Mapping
from typing import Any


class _VirtualSelector(selectors.BaseSelector):
    """Polls the real selector without blocking; an idle wait advances the virtual clock."""

    def __init__(self) -> None:
        self._real = selectors.DefaultSelector()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise RuntimeError("virtual time: every task waits and no timer is set (a deadlock)")
        self.now += timeout
        return []

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time (seconds from 0); see the module docstring."""

    def __init__(self) -> None:
        self._virtual = _VirtualSelector()
        super().__init__(self._virtual)
        # Timers due "now" must run: the real loop adds its clock's resolution to "now" when
        # it collects due timers, which is too small to matter for large virtual values.
        self._clock_resolution = 1e-6

    def time(self) -> float:
        return self._virtual.now
