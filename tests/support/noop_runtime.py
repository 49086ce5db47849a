"""The benchmarks' no-op runtime: launches cost nothing, runners are emulated in process.

A launch is recorded (with its time) and answered at once. So that jobs start and complete,
each launched runner is the simulator's runner emulator (:func:`simulator.runner.run_runner`)
as an asyncio task over one shared HTTP pool: it registers, takes a job, reports it done and
exits, exactly like ``python -m gha_scalesets.simulator.runner`` but without 500 Python processes on
a 2-core machine. Runners share a few small HTTP pools (httpcore scans every connection of a
pool on each request, so one pool of 500 connections would cost more than the runners
themselves). The emulator's own routes are not GitHub routes: the simulator neither counts
nor delays them. When a runner reports its job done, the runtime records the time (jobs in the
benchmarks last 0 s, so that is also when the job started) for the job-wait percentiles.
``boot_seconds`` models the machine's boot before the runner starts (an injected latency, the
same in every mode): real runners boot elsewhere, so they do not compete with the listener.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from collections.abc import Sequence

import httpx

from gha_scalesets.listener.runtimes.base import LaunchResult, RunnerSpec
from gha_scalesets.simulator.runner import run_runner
from tests.support.inprocess import EmulatorTaskRuntime


class NoopRuntime(EmulatorTaskRuntime):
    """A :class:`~listener.runtimes.base.Runtime` whose runners are in-process emulators."""

    name = "noop"

    def __init__(
        self, *, run_jobs: bool = True, pools: int = 32, boot_seconds: float = 0.0
    ) -> None:
        super().__init__()  # no cloud: api_calls stays empty
        self._boot_seconds = boot_seconds
        self.launch_times: list[float] = []  # time.monotonic() of every launch
        self.job_done_times: list[float] = []
        self._run_jobs = run_jobs
        self._ids = itertools.count(1)
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
                http = self._pool(number)
                self._start(provider_id, spec, functools.partial(self._work, spec, http))
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

    async def _work(self, spec: RunnerSpec, http: httpx.AsyncClient) -> None:
        await asyncio.sleep(self._boot_seconds)
        outcome = await run_runner(spec.jit_config, client=http)
        if outcome.status == "completed":
            self.job_done_times.append(time.monotonic())

    async def _release(self) -> None:
        await asyncio.gather(*(pool.aclose() for pool in self._pools))
