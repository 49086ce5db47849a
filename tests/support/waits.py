"""Waiting for a condition by polling it (sync or async), with a deadline."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

Condition = Callable[[], Any | Awaitable[Any]]


async def _value(condition: Condition) -> Any:
    value = condition()
    return await value if inspect.isawaitable(value) else value


async def eventually(condition: Condition, within: float, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy (returned) or ``within`` seconds
    pass (then its last, falsy value)."""
    deadline = time.monotonic() + within
    while True:
        value = await _value(condition)
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


async def wait_for(
    condition: Condition, timeout: float = 10.0, what: str = "the condition", interval: float = 0.05
) -> Any:
    """Poll ``condition`` until it returns something truthy (returned), or fail after
    ``timeout`` seconds naming ``what``."""
    value = await eventually(condition, timeout, interval)
    if not value:
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
    return value
