"""Runtimes whose runners are the simulator's emulator as asyncio tasks (no process per runner).

Each launched runner is one task running :func:`simulator.runner.run_runner` (or whatever work a
subclass hands over); when it ends, a :class:`~listener.runtimes.base.RuntimeEvent` reports how.
Subclasses decide provider ids, HTTP pools and what a runner does before or after its job.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import httpx

from gha_scalesets.listener.runtimes.base import (
    LaunchResult,
    RunnerPhase,
    RunnerSpec,
    RuntimeEvent,
    RuntimeRunner,
)
from gha_scalesets.simulator.runner import run_runner


class EmulatorTaskRuntime:
    """Task bookkeeping, events, termination and shutdown for in-process runners."""

    def __init__(self) -> None:
        self.api_calls: Counter[str] = Counter()
        # Runners the listener asked to delete, once per ask: a cloud request each on EC2,
        # ECS or Kubernetes (TerminateInstances, StopTask, a pod delete).
        self.deletes = 0
        self.peak_running = 0
        self._tasks: dict[str, tuple[asyncio.Task[None], RunnerSpec]] = {}
        self._events: asyncio.Queue[RuntimeEvent | None] = asyncio.Queue()

    @property
    def running(self) -> int:
        """Runners whose task has not ended yet."""
        return len(self._tasks)

    def _start(
        self, provider_id: str, spec: RunnerSpec, work: Callable[[], Awaitable[None]]
    ) -> None:
        """Run ``work`` as the runner ``provider_id``; its end becomes a runtime event."""
        task = asyncio.create_task(self._run(provider_id, spec, work))
        self._tasks[provider_id] = (task, spec)
        self.peak_running = max(self.peak_running, len(self._tasks))

    async def _run(
        self, provider_id: str, spec: RunnerSpec, work: Callable[[], Awaitable[None]]
    ) -> None:
        phase, reason = RunnerPhase.STOPPED, "completed"
        try:
            await work()
        except asyncio.CancelledError:
            reason = "terminated"
        except Exception as exc:  # an emulator failure is a runner failure, not ours
            phase, reason = RunnerPhase.FAILED, type(exc).__name__
        finally:
            self._tasks.pop(provider_id, None)
            await self._events.put(
                RuntimeEvent(provider_id, phase, spec.runner_name, spec.scale_set_id, reason)
            )

    async def terminate(self, provider_ids: Sequence[str]) -> None:
        self.deletes += len(provider_ids)
        for provider_id in provider_ids:
            entry = self._tasks.get(provider_id)
            if entry is not None:
                entry[0].cancel()

    async def list_runners(self, scale_set_id: int) -> list[RuntimeRunner]:
        return [
            RuntimeRunner(spec.runner_name, provider_id, scale_set_id, RunnerPhase.RUNNING)
            for provider_id, (_, spec) in self._tasks.items()
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
        await self._release()
        await self._events.put(None)

    async def _release(self) -> None:
        """Free what the subclass holds (HTTP pools, a wrapped runtime) once the runners ended."""


class InProcessRuntime(EmulatorTaskRuntime):
    """Talks HTTP to the simulator exactly like ``python -m gha_scalesets.simulator.runner``
    does, without the cost of one Python process per runner (bursts of 100 jobs stay fast on two
    cores); ``hold`` delays every runner until it is set (runners that never show up)."""

    name = "inprocess"

    def __init__(self, hold: asyncio.Event | None = None) -> None:
        super().__init__()
        self.launched: list[str] = []
        self.launch_batches: list[int] = []  # runners per launch call
        self._hold = hold
        self._ids = itertools.count(1)
        # One pool for all runners (a client per runner costs ~0.1 s of TLS setup each);
        # every idle runner holds a connection in its acquire poll.
        self._http = httpx.AsyncClient(limits=httpx.Limits(max_connections=500), timeout=60)

    async def launch(self, runners: Sequence[RunnerSpec]) -> list[LaunchResult]:
        self.launch_batches.append(len(runners))
        results = []
        for spec in runners:
            provider_id = f"task-{next(self._ids)}"
            self._start(provider_id, spec, functools.partial(self._work, spec))
            self.launched.append(spec.runner_name)
            results.append(LaunchResult(spec.runner_name, provider_id=provider_id))
        return results

    async def _work(self, spec: RunnerSpec) -> None:
        if self._hold is not None:
            await self._hold.wait()
        await run_runner(spec.jit_config, client=self._http)

    async def _release(self) -> None:
        await self._http.aclose()
