"""A test runtime that runs the simulator's runner emulator as asyncio tasks.

It talks HTTP to the simulator exactly like ``python -m simulator.runner`` does, without the
cost of one Python process per runner, so bursts of 100 jobs stay fast on two cores.
``hold`` delays every runner until it is set (runners that never show up).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Sequence

import httpx

from listener.runtimes.base import (
    LaunchResult,
    RunnerPhase,
    RunnerSpec,
    RuntimeEvent,
    RuntimeRunner,
)
from simulator.runner import run_runner


class InProcessRuntime:
    name = "inprocess"

    def __init__(self, hold: asyncio.Event | None = None) -> None:
        self.api_calls: Counter[str] = Counter()
        self.launched: list[str] = []
        self.running = 0
        self.peak_running = 0
        self._hold = hold
        self._ids = itertools.count(1)
        self._tasks: dict[str, tuple[asyncio.Task[None], RunnerSpec]] = {}
        self._events: asyncio.Queue[RuntimeEvent | None] = asyncio.Queue()
        # One pool for all runners (a client per runner costs ~0.1 s of TLS setup each);
        # every idle runner holds a connection in its acquire poll.
        self._http = httpx.AsyncClient(limits=httpx.Limits(max_connections=500), timeout=60)

    async def launch(self, runners: Sequence[RunnerSpec]) -> list[LaunchResult]:
        results = []
        for spec in runners:
            provider_id = f"task-{next(self._ids)}"
            task = asyncio.create_task(self._run(provider_id, spec))
            self._tasks[provider_id] = (task, spec)
            self.launched.append(spec.runner_name)
            self.running += 1
            self.peak_running = max(self.peak_running, self.running)
            results.append(LaunchResult(spec.runner_name, provider_id=provider_id))
        return results

    async def _run(self, provider_id: str, spec: RunnerSpec) -> None:
        phase, reason = RunnerPhase.STOPPED, "completed"
        try:
            if self._hold is not None:
                await self._hold.wait()
            await run_runner(spec.jit_config, client=self._http)
        except asyncio.CancelledError:
            reason = "terminated"
        except Exception as exc:
            phase, reason = RunnerPhase.FAILED, type(exc).__name__
        finally:
            self.running -= 1
            self._tasks.pop(provider_id, None)
            await self._events.put(
                RuntimeEvent(provider_id, phase, spec.runner_name, spec.scale_set_id, reason)
            )

    async def terminate(self, provider_ids: Sequence[str]) -> None:
        for provider_id in provider_ids:
            entry = self._tasks.get(provider_id)
            if entry is not None:
                entry[0].cancel()

    async def list_runners(self, scale_set_id: int) -> list[RuntimeRunner]:
        return [
            RuntimeRunner(spec.runner_name, pid, scale_set_id, RunnerPhase.RUNNING)
            for pid, (_, spec) in self._tasks.items()
            if spec.scale_set_id == scale_set_id
        ]

    async def events(self) -> AsyncIterator[RuntimeEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    async def close(self) -> None:
        tasks = [task for task, _ in self._tasks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._http.aclose()
        await self._events.put(None)
