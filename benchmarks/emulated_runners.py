"""The shared core of the runtimes whose runners are the simulator's emulator as asyncio tasks.

Each launched runner is one task running :func:`simulator.runner.run_runner` (or whatever work a
subclass hands over); when it ends, a :class:`~listener.runtimes.base.RuntimeEvent` reports how.
Subclasses decide provider ids, HTTP pools and what a runner does before or after its job.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from gha_scalesets.listener.runtimes.base import (
    RunnerPhase,
    RunnerSpec,
    RuntimeEvent,
    RuntimeRunner,
)


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
