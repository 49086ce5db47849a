"""Replay a workload trace through the real listener, in virtual time.

The deciding code is the product's: the real :class:`~listener.app.Listener` (session loop,
scaler, warm-capacity policy, memory registry, leader election) and the real scaleset
``Client`` talk HTTP to the real simulator app, in one event loop on virtual time
(:mod:`simulator.virtual_time`; the HTTP goes over ``httpx.ASGITransport``, no socket). Only
the machines are modelled: :class:`ReplayRuntime` launches a runner by waiting its boot time,
then runs the simulator's runner emulator (registers, takes a job, runs it for the job's
duration, exits). A simulated day takes about a minute of CPU.

Measured per replay, over ``[measure_from, end)``: each job's wait (queued -> a runner took
it, from the simulator's job records), and each runner's time booting and idle (booted, no
job yet), from the runtime's records.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from benchmarks.harness import percentile
from gha_scalesets.listener.app import Listener
from gha_scalesets.listener.config import ListenerSettings
from gha_scalesets.listener.leadership import MemoryLeaseStore
from gha_scalesets.listener.registry.memory import MemoryRegistry
from gha_scalesets.listener.runtimes.base import LaunchResult, RunnerSpec
from gha_scalesets.scaleset import Client, PatCredentials
from gha_scalesets.scaleset.auth import TokenCache
from gha_scalesets.simulator.config import SimulatorConfig
from gha_scalesets.simulator.inprocess import InProcessSimulator
from gha_scalesets.simulator.runner import run_runner
from gha_scalesets.simulator.virtual_time import VirtualTimeLoop
from gha_scalesets.simulator.workload import TraceJob, replay
from tests.support.inprocess import EmulatorTaskRuntime

PAT = "ghp_replay_token"
ORG = "acme"
SCALE_SET = "replay"
_LONG_TTL = 30 * 86_400.0  # tokens outlive any replay: expiry is not what is measured
_DRAIN_SECONDS = 3 * 3600.0  # after the last arrival, until every job has started


@dataclass
class RunnerLife:
    """One runner's timeline (epoch seconds; ``None``: did not happen)."""

    name: str
    launched: float
    booted: float | None = None
    ended: float | None = None


class ReplayRuntime(EmulatorTaskRuntime):
    """Runners that boot for ``boot_seconds`` (virtual), then run the runner emulator."""

    name = "replay"

    def __init__(self, sim: InProcessSimulator, boot_seconds: float) -> None:
        super().__init__()
        self._sim = sim
        self._boot = boot_seconds
        self._http: httpx.AsyncClient = sim.http()
        self._ids = itertools.count(1)
        self.lives: list[RunnerLife] = []

    async def launch(self, runners: Sequence[RunnerSpec]) -> list[LaunchResult]:
        results = []
        for spec in runners:
            provider_id = f"replay-{next(self._ids)}"
            life = RunnerLife(spec.runner_name, self._sim.clock.now())
            self.lives.append(life)
            self._start(provider_id, spec, lambda s=spec, lf=life: self._work(s, lf))
            results.append(LaunchResult(spec.runner_name, provider_id=provider_id))
        return results

    async def _work(self, spec: RunnerSpec, life: RunnerLife) -> None:
        try:
            await asyncio.sleep(self._boot)
            life.booted = self._sim.clock.now()
            await run_runner(spec.jit_config, client=self._http)
        finally:
            life.ended = self._sim.clock.now()


@dataclass(frozen=True)
class Window:
    """The replayed span: the listener starts at ``start``; ``[measure_from, end)`` counts."""

    start: float
    measure_from: float
    end: float


@dataclass
class Replay:
    """What one replay measured."""

    waits: list[float] = field(default_factory=list)  # seconds, per measured job
    idle_seconds: float = 0.0  # runners booted and without a job, within the window
    boot_seconds: float = 0.0  # runners booting, within the window
    runners_launched: int = 0
    listener_idle_seconds: float = 0.0  # what the listener itself counted as warm

    def summary(self, price_per_runner_minute: float) -> dict[str, Any]:
        jobs = len(self.waits)
        per_k = 1000 / jobs if jobs else 0.0
        idle_min, boot_min = self.idle_seconds / 60, self.boot_seconds / 60
        return {
            "jobs": jobs,
            "wait_p50_seconds": round(percentile(self.waits, 50), 1),
            "wait_p95_seconds": round(percentile(self.waits, 95), 1),
            "wait_p99_seconds": round(percentile(self.waits, 99), 1),
            "idle_runner_minutes": round(idle_min, 1),
            "idle_runner_minutes_per_1000_jobs": round(idle_min * per_k, 1),
            "boot_runner_minutes_per_1000_jobs": round(boot_min * per_k, 1),
            # what is paid beyond the jobs themselves: booting plus waiting for a job
            "overhead_cost_per_1000_jobs": round(
                (idle_min + boot_min) * per_k * price_per_runner_minute, 2
            ),
            "runners_launched": self.runners_launched,
            "listener_warm_runner_minutes": round(self.listener_idle_seconds / 60, 1),
        }


def _overlap(start: float | None, end: float | None, window: Window) -> float:
    if start is None or end is None:
        return 0.0
    return max(0.0, min(end, window.end) - max(start, window.measure_from))


def _measure(sim: InProcessSimulator, runtime: ReplayRuntime, window: Window) -> Replay:
    result = Replay(
        runners_launched=sum(1 for life in runtime.lives if life.launched >= window.measure_from)
    )
    for job in sim.sim.world.jobs.jobs.values():
        if window.measure_from <= job.queue_time < window.end:
            started = job.runner_assign_time
            result.waits.append(
                (started if started is not None else sim.clock.now()) - job.queue_time
            )
    now = sim.clock.now()
    job_started = {
        job.runner.name: job.runner_assign_time
        for job in sim.sim.world.jobs.jobs.values()
        if job.runner is not None
    }
    for life in runtime.lives:
        ended = life.ended if life.ended is not None else now
        result.boot_seconds += _overlap(life.launched, life.booted or ended, window)
        result.idle_seconds += _overlap(life.booted, job_started.get(life.name) or ended, window)
    return result


async def replay_listener(
    scale_set: dict[str, Any],
    jobs: Sequence[TraceJob],
    window: Window,
    *,
    boot_seconds: float,
    seed: int = 1,
) -> Replay:
    """Replay ``jobs`` (those from ``window.start`` on) to a listener serving one scale set
    configured by ``scale_set`` (``min_runners``, ``max_runners``, ``warm``); call on a
    :class:`VirtualTimeLoop`."""
    config = SimulatorConfig(
        pats=(PAT,),
        seed=seed,
        runner_hold_seconds=3600.0,
        admin_token_ttl_seconds=_LONG_TTL,
        installation_token_ttl_seconds=_LONG_TTL,
        registration_token_ttl_seconds=_LONG_TTL,
        mq_token_ttl_seconds=_LONG_TTL,
        assign_timeout_seconds=3600.0,  # jobs wait for capacity, never cancelled
    )
    loop = asyncio.get_running_loop()
    async with InProcessSimulator(config, epoch=window.start - loop.time()) as sim:
        clock = sim.clock.now
        client = Client(
            sim.config_url(ORG), PatCredentials(PAT), http=sim.http(), token_cache=TokenCache(clock)
        )
        group = await client.get_runner_group_by_name("Default")
        created = await client.create_scale_set(name=SCALE_SET, runner_group_id=group.id)
        settings = ListenerSettings(
            github_config_url=sim.config_url(ORG),
            credentials={"token": PAT},
            scale_sets=[{"scale_set_id": created.id, **scale_set}],
            metrics_port=None,
            owner_name="replay",
            log_level="warning",
        )
        runtime = ReplayRuntime(sim, boot_seconds)
        listener = Listener(
            settings,
            registry=MemoryRegistry(clock=clock),
            runtime=runtime,
            leases=MemoryLeaseStore(),
            client=client,
            clock=clock,
        )
        await listener.start()
        stop = asyncio.Event()
        serving = asyncio.create_task(listener.run_until(stop))
        todo = [job for job in jobs if window.start <= job.at < window.end]
        await replay(todo, lambda group: _queue(sim, group), clock)
        await _drain(sim, window)
        result = _measure(sim, runtime, window)
        result.listener_idle_seconds = _counter(listener, "gha_listener_idle_runner_seconds_total")
        stop.set()
        await serving
        await listener.stop()
    return result


def _queue(sim: InProcessSimulator, group: list[TraceJob]) -> None:
    for job in group:
        sim.queue([SCALE_SET], job.duration)


async def _drain(sim: InProcessSimulator, window: Window) -> None:
    """Run on to ``window.end``, then until every job queued has started (bounded)."""
    if (delay := window.end - sim.clock.now()) > 0:
        await asyncio.sleep(delay)
    deadline = sim.clock.now() + _DRAIN_SECONDS
    while sim.sim.world.jobs.queued or any(
        job.runner_assign_time is None for job in sim.sim.world.jobs.jobs.values()
    ):
        if sim.clock.now() >= deadline:
            return
        await asyncio.sleep(30)


def _counter(listener: Listener, name: str) -> float:
    return sum(
        sample.value
        for family in listener.metrics.registry.collect()
        for sample in family.samples
        if sample.name == name
    )


def run_replay(
    scale_set: dict[str, Any], jobs: Sequence[TraceJob], window: Window, **kw: Any
) -> Replay:
    """:func:`replay_listener` on a fresh virtual-time loop."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(replay_listener(scale_set, jobs, window, **kw))
    finally:
        loop.close()
