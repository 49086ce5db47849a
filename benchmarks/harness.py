"""Shared plumbing of the scenarios: their credentials, request counting, stats.

The simulator runs as ``python -m gha_scalesets.simulator`` in a child process
(:class:`tests.support.processes.SimulatorProcess`) so that it and the code under test each get a
CPU core (in one process they would share the GIL and every number would measure Python's
scheduler). It is driven through :class:`~simulator.testing.SimulatorServer`'s control helpers,
which only talk HTTP to ``/_sim/``.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tests.support.canaries import BENCHMARK_PAT
from tests.support.waits import wait_for

PAT = BENCHMARK_PAT  # the secret scan knows it as a test credential
ORG = "acme"
APP_CLIENT_ID = "Iv1.benchmarkapp"
APP_INSTALLATION_ID = 4711
_WAIT_TIMEOUT = 600.0
_WAIT_POLL_SECONDS = 0.005


def requests_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, int]:
    """GitHub-facing requests per route key between two ``/_sim/stats`` snapshots."""
    old, new = before["requests"], after["requests"]
    diff = {route: count - old.get(route, 0) for route, count in new.items()}
    return {route: count for route, count in sorted(diff.items()) if count}


def total(requests: Mapping[str, int], needle: str = "") -> int:
    return sum(n for route, n in requests.items() if needle in route)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: every reported value was observed)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


AUTH_ROUTES = ("access_tokens", "registration-token", "runner-registration")


def auth_requests(requests: Mapping[str, int]) -> int:
    """Requests of the auth chain (installation token, registration token, admin token)."""
    return sum(n for route, n in requests.items() if any(a in route for a in AUTH_ROUTES))


async def wait_until(condition: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Poll ``condition`` closely (scenario timings depend on it) under the scenarios' deadline."""
    await wait_for(condition, _WAIT_TIMEOUT, what, interval=_WAIT_POLL_SECONDS)
