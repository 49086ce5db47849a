"""How late the event loop runs: one listener process serves every scale set on one loop, so a
callback that waits behind thousands of others delays every poll, renewal and launch.

A task sleeps ``interval`` seconds over and over; how much later than asked it wakes is the
lag (the longest time any callback waited behind others during that sleep, at least).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def watch_loop_lag(observe: Callable[[float], None], interval: float = 0.25) -> None:
    """Call ``observe(lag_seconds)`` about every ``interval`` seconds until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(interval)
        observe(max(0.0, loop.time() - started - interval))
