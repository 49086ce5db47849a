"""The benchmarks' no-op runtime: launches cost nothing, runners are emulated in process.

A launch is recorded (with its time) and answered at once. So that jobs start and complete,
each launched runner is the simulator's runner emulator (:func:`simulator.runner.run_runner`)
as an asyncio task over one shared HTTP pool: it registers, takes a job, reports it done and
exits, exactly like ``python -m simulator.runner`` but without 500 Python processes on a
2-core machine. Runners share a few small HTTP pools (httpcore scans every connection of a
pool on each request, so one pool of 500 connections would cost more than the runners
themselves). The emulator's own routes are not GitHub routes: the simulator neither counts
nor delays them. When a runner reports its job done, the runtime records the time (jobs in the
benchmarks last 0 s, so that is also when the job started) for the job-wait percentiles.
"""

from __future__ import annotations

import asyncio
import itertools
import time
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


class NoopRuntime:
    """A :class:`~listener.runtimes.base.Runtime` whose runners are in-process emulators."""

    name = "noop"

    def __init__(self, *, run_jobs: bool = True, pools: int = 32) -> None:
        self.api_calls: Counter[str] = Counter()  # no cloud
        self.launch_times: list[float] = []  # time.monotonic() of every launch
        self.job_done_times: list[float] = []
        self._run_jobs = run_jobs
        self._ids = itertools.count(1)
        self._tasks: dict[str, tuple[asyncio.Task[None], RunnerSpec]] = {}
        self._events: asyncio.Queue[RuntimeEvent | None] = asyncio.Queue()
        self._pools: list[httpx.AsyncClient] = []
        self._pool_count = pools

    @property
    def launched(self) -> int:
        return len(self.launch_times)

    async def launch(self, runners: Sequence[RunnerSpec]) -> list[LaunchResult]:
        results = []
        for spec in runners:
            number = next(self._ids)
            provider_id = f"noop-{number}"
            self.launch_times.append(time.monotonic())
            if self._run_jobs:
                task = asyncio.create_task(self._run(provider_id, spec, self._pool(number)))
                self._tasks[provider_id] = (task, spec)
            results.append(LaunchResult(spec.runner_name, provider_id=provider_id))
        return results

    def _pool(self, number: int) -> httpx.AsyncClient:
        # Round-robin by launch number, fixed when the runner is launched: a burst's runners
        # all start after the launch call returns, so any count read then is the same for all
        # of them and would pile them onto one pool (whose connection limit then fails them).
        if not self._pools:
            # One TLS context for all pools: loading the CA bundle costs ~70 ms per client.
            tls = httpx.create_ssl_context()
            self._pools = [
                httpx.AsyncClient(verify=tls, timeout=httpx.Timeout(10.0, read=60.0))
                for _ in range(self._pool_count)
            ]
        return self._pools[number % self._pool_count]

    async def _run(self, provider_id: str, spec: RunnerSpec, http: httpx.AsyncClient) -> None:
        phase, reason = RunnerPhase.STOPPED, "completed"
        try:
            outcome = await run_runner(spec.jit_config, client=http)
            if outcome.status == "completed":
                self.job_done_times.append(time.monotonic())
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
        await asyncio.gather(*(pool.aclose() for pool in self._pools))
        await self._events.put(None)
