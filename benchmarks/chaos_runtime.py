"""The chaos runtime: runners are the simulator's emulator run as asyncio tasks.

Alone it stands in for a machine that starts runners instantly; wrapped around a real cloud
runtime (EC2 or ECS on the moto server) it launches and terminates real instances or tasks
there and runs the runner's work in-process, so cloud orphans can be counted in moto.
``never_online_rate`` makes a seeded share of runners hang before they register their
session (a crashed image, a stuck boot): GitHub then reassigns their jobs.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import random
from collections.abc import Sequence

from gha_scalesets.listener.runtimes.base import LaunchResult, RunnerSpec, Runtime, RuntimeRunner
from gha_scalesets.simulator.runner import run_runner
from tests.support.inprocess import EmulatorTaskRuntime


class EmulatedRuntime(EmulatorTaskRuntime):
    """A :class:`~listener.runtimes.base.Runtime` whose runners are emulator tasks."""

    name = "emulated"

    def __init__(
        self, *, cloud: Runtime | None = None, never_online_rate: float = 0.0, seed: int = 0
    ) -> None:
        super().__init__()
        if cloud is not None:
            self.api_calls = cloud.api_calls
        self.launched = 0
        self.never_online = 0
        # Every JIT config handed to a runner: the canaries of the secret scan.
        self.jit_configs: list[str] = []
        self._cloud = cloud
        self._never_online_rate = never_online_rate
        self._rng = random.Random(seed)
        self._ids = itertools.count(1)

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
            work = functools.partial(self._work, result.provider_id, spec, online)
            self._start(result.provider_id, spec, work)
            self.launched += 1
        return results

    async def _work(self, provider_id: str, spec: RunnerSpec, online: bool) -> None:
        if not online:
            await asyncio.Event().wait()  # until terminated
        await run_runner(spec.jit_config)
        if self._cloud is not None:  # an ephemeral machine shuts itself down
            await self._cloud.terminate([provider_id])

    async def terminate(self, provider_ids: Sequence[str]) -> None:
        await super().terminate(provider_ids)
        if self._cloud is not None:
            await self._cloud.terminate(provider_ids)

    async def list_runners(self, scale_set_id: int) -> list[RuntimeRunner]:
        if self._cloud is not None:
            return await self._cloud.list_runners(scale_set_id)
        return await super().list_runners(scale_set_id)

    async def _release(self) -> None:
        if self._cloud is not None:
            await self._cloud.close()
