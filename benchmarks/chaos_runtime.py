"""The chaos runtime: runners are the simulator's emulator run as asyncio tasks.

Alone it stands in for a machine that starts runners instantly; wrapped around a real cloud
runtime (EC2 or ECS on the moto server) it launches and terminates real instances or tasks
there and runs the runner's work in-process, so cloud orphans can be counted in moto.
``never_online_rate`` makes a seeded share of runners hang before they register their
session (a crashed image, a stuck boot): GitHub then reassigns their jobs.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from collections.abc import AsyncIterator, Sequence

from listener.runtimes.base import (
    LaunchResult,
    RunnerPhase,
    RunnerSpec,
    Runtime,
    RuntimeEvent,
    RuntimeRunner,
)
from simulator.runner import run_runner


class EmulatedRuntime:
    """A :class:`~listener.runtimes.base.Runtime` whose runners are emulator tasks."""

    name = "emulated"

    def __init__(
        self, *, cloud: Runtime | None = None, never_online_rate: float = 0.0, seed: int = 0
    ) -> None:
        self.api_calls: Counter[str] = cloud.api_calls if cloud is not None else Counter()
        self.launched = 0
        self.never_online = 0
        self.peak_running = 0
        # Every JIT config handed to a runner: the canaries of the secret scan.
        self.jit_configs: list[str] = []
        self._cloud = cloud
        self._never_online_rate = never_online_rate
        self._rng = random.Random(seed)
        self._ids = itertools.count(1)
        self._tasks: dict[str, tuple[asyncio.Task[None], RunnerSpec]] = {}
        self._events: asyncio.Queue[RuntimeEvent | None] = asyncio.Queue()

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def launch(self, runners: Sequence[RunnerSpec]) -> list[LaunchResult]:
        if self._cloud is not None:
            results = await self._cloud.launch(runners)
        else:
            results = [
                LaunchResult(s.runner_name, provider_id=f"task-{next(self._ids)}") for s in runners
            ]
        for spec, result in zip(runners, results, strict=True):
            if result.provider_id is None:
                continue
            self.jit_configs.append(spec.jit_config)
            online = self._rng.random() >= self._never_online_rate
            self.never_online += not online
            task = asyncio.create_task(self._run(result.provider_id, spec, online))
            self._tasks[result.provider_id] = (task, spec)
            self.launched += 1
            self.peak_running = max(self.peak_running, len(self._tasks))
        return results

    async def _run(self, provider_id: str, spec: RunnerSpec, online: bool) -> None:
        phase, reason = RunnerPhase.STOPPED, "completed"
        try:
            if not online:
                await asyncio.Event().wait()  # until terminated
            await run_runner(spec.jit_config)
            if self._cloud is not None:  # an ephemeral machine shuts itself down
                await self._cloud.terminate([provider_id])
        except asyncio.CancelledError:
            reason = "terminated"
        except Exception as exc:
            phase, reason = RunnerPhase.FAILED, type(exc).__name__
        finally:
            self._tasks.pop(provider_id, None)
            await self._events.put(
                RuntimeEvent(provider_id, phase, spec.runner_name, spec.scale_set_id, reason)
            )

    async def terminate(self, provider_ids: Sequence[str]) -> None:
        for provider_id in provider_ids:
            entry = self._tasks.get(provider_id)
            if entry is not None:
                entry[0].cancel()
        if self._cloud is not None:
            await self._cloud.terminate(provider_ids)

    async def list_runners(self, scale_set_id: int) -> list[RuntimeRunner]:
        if self._cloud is not None:
            return await self._cloud.list_runners(scale_set_id)
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
        if self._cloud is not None:
            await self._cloud.close()
        await self._events.put(None)
