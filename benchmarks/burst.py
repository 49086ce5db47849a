"""Burst: N jobs queued at once against one scale set, ours vs. the upstream-equivalent model.

Both modes run against the same simulator process (latency on every GitHub route), each on its
own scale set, with the no-op runtime. Ours is the real :class:`~listener.app.Listener`
(session loop, scaler, memory registry, batch JIT); upstream is
:class:`~benchmarks.upstream.UpstreamListener`. Measured per mode:

- ``seconds_to_all_launched``: first message received -> last runner launched;
- ``api_calls_per_job``: GitHub requests from queueing the burst until every runner is
  launched, per job (the later JobStarted/JobCompleted messages cost both modes the same: one
  GET + one ack per envelope of <= 50 events);
- ``job_wait_p50/p95``: job queued -> a runner finished it (jobs last 0 s, so: picked up);
- ``runtime_deletes_per_runner`` (ours): the runtime's delete requests per launched runner,
  once every runner's slot is free (each runner ends twice, by its exit and by JobCompleted:
  one delete is what it needs).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from benchmarks.harness import ORG, PAT, percentile, requests_between, total, wait_until
from benchmarks.upstream import UpstreamListener, serving
from gha_scalesets.listener.app import Listener
from gha_scalesets.listener.config import ListenerSettings
from gha_scalesets.scaleset import PatCredentials
from gha_scalesets.scaleset.auth import TokenCache
from tests.support.github import create_scale_set
from tests.support.noop_runtime import NoopRuntime
from tests.support.processes import SimulatorProcess

_SAMPLE_SECONDS = 0.1
_PROBE_SECONDS = 0.005
GET_MESSAGE = "GET /message"


@dataclass
class Timeline:
    """Samples of (seconds since queueing, runners launched, jobs waiting for a runner)."""

    points: list[tuple[float, int, int]] = field(default_factory=list)

    def as_json(self) -> dict[str, list[float]]:
        return {
            "t": [round(p[0], 3) for p in self.points],
            "runners": [p[1] for p in self.points],
            "waiting": [p[2] for p in self.points],
        }


async def _stats(sim: SimulatorProcess) -> dict[str, Any]:
    return await asyncio.to_thread(sim.stats)


@contextlib.asynccontextmanager
async def _sampling(
    sim: SimulatorProcess, runtime: NoopRuntime, t0: float, timeline: Timeline
) -> AsyncIterator[None]:
    async def sample() -> None:
        while True:
            jobs = (await _stats(sim))["jobs"]
            timeline.points.append(
                (time.monotonic() - t0, runtime.launched, jobs["queued"] + jobs["assigned"])
            )
            await asyncio.sleep(_SAMPLE_SECONDS)

    task = asyncio.create_task(sample())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _measure(
    sim: SimulatorProcess,
    name: str,
    jobs: int,
    runtime: NoopRuntime,
    first_message: list[float],
    mode_started: dict[str, Any],
) -> dict[str, Any]:
    """Queue the burst once the listener polls; measure until every job completed.

    ``first_message`` gets the time the mode saw its first message (appended by its probe).
    """

    async def polling() -> bool:
        now = (await _stats(sim))["requests"].get(GET_MESSAGE, 0)
        return now > mode_started["requests"].get(GET_MESSAGE, 0)

    await wait_until(polling, "the first long poll")
    await asyncio.sleep(0.2)  # the poll passed the injected latency: the session has capacity
    before = await _stats(sim)
    completed_before = before["jobs"]["completed"]
    timeline = Timeline()
    t0 = time.monotonic()
    async with _sampling(sim, runtime, t0, timeline):
        await asyncio.to_thread(sim.queue_jobs, [name], jobs, 0.0)
        await wait_until(lambda: runtime.launched >= jobs, "every runner to launch")
        t_launched = runtime.launch_times[jobs - 1]
        launched = await _stats(sim)

        async def all_done() -> bool:
            return (await _stats(sim))["jobs"]["completed"] - completed_before >= jobs

        await wait_until(all_done, "every job to complete")
        done = await _stats(sim)
    assert first_message, "the mode never reported its first message"
    t_first = first_message[0]
    window = requests_between(before, launched)
    waits = [t - t0 for t in runtime.job_done_times[:jobs]]
    return {
        "seconds_to_all_launched": round(t_launched - t_first, 3),
        "seconds_queue_to_first_message": round(t_first - t0, 3),
        "api_calls_per_job": round(total(window) / jobs, 3),
        "job_wait_p50_seconds": round(percentile(waits, 50), 3),
        "job_wait_p95_seconds": round(percentile(waits, 95), 3),
        "jit_requests": total(window, "generatejitconfig"),
        # Until every job completed: launches beyond one per job show over-provisioning.
        "runners_launched_total": runtime.launched,
        "jit_requests_total": total(requests_between(before, done), "generatejitconfig"),
        "startup_requests": total(requests_between(mode_started, before)),
        "requests_to_all_launched": window,
        "timeline": timeline.as_json(),
        "_t_first": t_first - t0,
    }


async def run_ours(
    sim: SimulatorProcess, jobs: int, max_runners: int, jit_concurrency: int, boot: float
) -> dict[str, Any]:
    name = "burst-ours"
    await create_scale_set(sim, name, PAT, token_cache=TokenCache())
    started = await _stats(sim)
    runtime = NoopRuntime(boot_seconds=boot)
    settings = ListenerSettings(
        github_config_url=sim.config_url(ORG),
        credentials={"token": PAT},
        scale_sets=[{"name": name, "max_runners": max_runners}],
        metrics_port=None,
        owner_name="bench-ours",
        log_level="warning",
        jit_concurrency=jit_concurrency,
    )
    listener = Listener(settings, runtime=runtime)
    first: list[float] = []

    async def probe() -> None:  # the listener's own message counter marks the first message
        await wait_until(
            lambda: bool(
                listener.metrics.registry.get_sample_value(
                    "gha_listener_messages_total", {"name": name}
                )
            ),
            "the first message",
        )
        first.append(time.monotonic())

    stop = asyncio.Event()
    await listener.start()
    serving = asyncio.create_task(listener.run_until(stop))
    prober = asyncio.create_task(probe())
    try:
        result = await _measure(sim, name, jobs, runtime, first, started)
        ss_id = next(iter(listener.workers))

        async def all_freed() -> bool:
            return await listener.registry.count(ss_id) == 0

        await wait_until(all_freed, "every runner's slot to be freed")
        result["runtime_deletes_per_runner"] = round(runtime.deletes / runtime.launched, 3)
    finally:
        prober.cancel()
        stop.set()
        await serving
        chain_runs = listener.client.auth_chain_runs if listener.client else 0
        await listener.stop()
    result["auth_chain_runs"] = chain_runs
    return result


async def run_upstream(
    sim: SimulatorProcess, jobs: int, max_runners: int, boot: float
) -> dict[str, Any]:
    name = "burst-upstream"
    ss_id = (await create_scale_set(sim, name, PAT, token_cache=TokenCache())).id
    started = await _stats(sim)
    runtime = NoopRuntime(boot_seconds=boot)
    first: list[float] = []
    upstream = UpstreamListener(
        sim.config_url(ORG),
        PatCredentials(PAT),
        scale_set_id=ss_id,
        scale_set_name=name,
        max_runners=max_runners,
        runtime=runtime,
        on_message=lambda t: first.append(t) if not first else None,
    )
    async with serving(upstream, runtime):
        result = await _measure(sim, name, jobs, runtime, first, started)
        result["auth_chain_runs"] = upstream.client.auth_chain_runs
        return result


async def run(
    *,
    jobs: int = 500,
    max_runners: int = 500,
    latency_ms: float = 50.0,
    jitter_ms: float = 10.0,
    jit_concurrency: int = 50,
    runner_boot_seconds: float = 5.0,
    seed: int = 1,
) -> dict[str, Any]:
    """Both modes in one simulator run; returns the scenario's result object.

    ``runner_boot_seconds`` is how long a launched runner takes to start (a pre-pulled pod or a
    warm instance pool is about that fast); both modes pay it.
    """
    with SimulatorProcess(PAT, long_poll_seconds=10.0, seed=seed) as sim:
        sim.set_faults(latency_ms=latency_ms, jitter_ms=jitter_ms)
        ours = await run_ours(sim, jobs, max_runners, jit_concurrency, runner_boot_seconds)
        upstream = await run_upstream(sim, jobs, max_runners, runner_boot_seconds)
    for result in (ours, upstream):
        result.pop("_t_first")
    return {
        "parameters": {
            "jobs": jobs,
            "max_runners": max_runners,
            "latency_ms": latency_ms,
            "jitter_ms": jitter_ms,
            "jit_concurrency": jit_concurrency,
            "runner_boot_seconds": runner_boot_seconds,
            "seed": seed,
        },
        "ours": ours,
        "upstream_equivalent": upstream,
        "speedup": round(upstream["seconds_to_all_launched"] / ours["seconds_to_all_launched"], 1),
    }
