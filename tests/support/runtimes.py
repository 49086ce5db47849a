"""Runner specs, event reading and pacing for the runtime tests."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Mapping

from gha_scalesets.listener.runtimes._pacing import ApiLimit, Pacer
from gha_scalesets.listener.runtimes.base import RunnerSpec, RuntimeEvent
from gha_scalesets.scaleset.retry import RetryPolicy
from tests.support.clocks import FakeClock

K8S_NAMESPACE = "runners"  # where the runtime tests' Kubernetes runtimes put runners


def jit_config(name: str) -> str:
    """A JIT-config-sized (about 2 KB) base64 secret, unique per runner."""
    return base64.b64encode(f"jit-secret-of-{name}:".encode() * 80).decode()


def specs(
    n: int, scale_set_id: int = 7, prefix: str = "linux-x64", start: int = 0
) -> list[RunnerSpec]:
    return [
        RunnerSpec(
            scale_set_id=scale_set_id,
            scale_set_name="linux-x64",
            runner_name=f"{prefix}-{i:05d}",
            runner_id=1000 + i,
            jit_config=jit_config(f"{prefix}-{i:05d}"),
        )
        for i in range(start, start + n)
    ]


def paced(limits: dict[str, ApiLimit], clock: FakeClock) -> Pacer:
    """A pacer of ``limits`` whose waits only move ``clock``."""
    return Pacer(limits, clock=clock, sleep=clock.sleep)


class WatchGate:
    """A retry policy whose waits can be held: a test stops the runtime's re-watch while it
    changes the world, then lets it go on. Unheld, it waits 0.2 s at most."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.waiting = asyncio.Event()
        self.policy = RetryPolicy(
            max_attempts=5, backoff_base=0.05, backoff_max=0.2, deadline=None, sleep=self._sleep
        )

    async def _sleep(self, seconds: float) -> None:
        self.waiting.set()
        await self.open.wait()
        await asyncio.sleep(seconds)


async def take(
    events: AsyncIterator[RuntimeEvent], n: int, timeout: float = 15.0
) -> list[RuntimeEvent]:
    """The next ``n`` events; fails the test when they do not come within ``timeout``."""
    got: list[RuntimeEvent] = []
    async with asyncio.timeout(timeout):
        while len(got) < n:
            got.append(await anext(events))
    return got


def describe_and_list_calls(api_calls: Mapping[str, int]) -> int:
    """Calls that read cloud state (Describe*/List*): what reconciliation alone may spend."""
    return sum(
        count
        for op, count in api_calls.items()
        if op.split(":", 1)[1].startswith(("Describe", "List"))
    )
