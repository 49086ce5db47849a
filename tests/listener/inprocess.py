"""A test runtime that runs the simulator's runner emulator as asyncio tasks.

It talks HTTP to the simulator exactly like ``python -m gha_scalesets.simulator.runner`` does,
without the cost of one Python process per runner, so bursts of 100 jobs stay fast on two cores.
``hold`` delays every runner until it is set (runners that never show up).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Sequence

import httpx

from benchmarks.emulated_runners import EmulatorTaskRuntime
from gha_scalesets.listener.runtimes.base import LaunchResult, RunnerSpec
from gha_scalesets.simulator.runner import run_runner


class InProcessRuntime(EmulatorTaskRuntime):
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
