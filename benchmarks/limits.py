"""Limits: a 2,000-job burst under a ceiling of 180 JIT configs a minute per credential.

GitHub documents 900 points a minute per REST endpoint, 5 points per POST: 180
``generate-jitconfig`` calls a minute (terraform-aws-github-runner works out the same per App).
The simulator enforces that on ``generatejitconfig`` per credential (a sliding window, 429 with
``Retry-After``, a one-minute block that restarts with every request sent into it, at most 100
concurrent requests). Each mode runs against its own simulator process, same seed:

- ``pacing_on``: our listener, the ceiling configured (``pacing.ceilings.jit: 180``);
- ``pacing_learned``: our listener, the ceiling unknown: learned from the first refusal;
- ``pacing_off``: our listener with pacing off (the behaviour before it: ``jit_concurrency``
  requests in flight, a refused one retried after its ``Retry-After``);
- ``upstream_equivalent``: :class:`~benchmarks.upstream.UpstreamListener` (serial JIT, a 429's
  ``Retry-After`` waited out, nothing else);
- then ``pacing_on`` with 1, 2 and 4 credentials (PATs) sharing the burst.

Time is simulated: every duration (the limits' minute and block, the injected latency, the
listener's longest backoff) is divided by ``time_scale``, and the reported times are multiplied
back. Measured per mode: simulated time from queueing the burst to the last runner launched,
the ceiling's best time for the burst as a share of it (:meth:`Burst.best_minutes`), requests
refused (all, and those the client sent
after it had already been refused once), and the time the simulator held a block.
Runners are not started (the no-op runtime records launches): the burst ends at its last JIT.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from benchmarks.harness import ORG, PAT, wait_until
from benchmarks.upstream import UpstreamListener, serving
from gha_scalesets.listener.app import Listener
from gha_scalesets.listener.config import ListenerSettings
from gha_scalesets.scaleset import Client, PatCredentials
from gha_scalesets.scaleset.auth import TokenCache
from tests.support.github import create_scale_set
from tests.support.noop_runtime import NoopRuntime
from tests.support.processes import SimulatorProcess
from tests.support.waits import eventually as within

POINTS_PER_JIT = 5
MINUTE = 60.0
NAME = "limits"


@dataclass(frozen=True)
class Mode:
    """One way of meeting the limits: whose listener, with what pacing, how many credentials."""

    name: str
    credentials: int = 1
    pacing: str = "on"  # "on" (ceiling given), "learned", "off"
    upstream: bool = False


MODES = (
    Mode("pacing_on"),
    Mode("pacing_learned", pacing="learned"),
    Mode("pacing_off", pacing="off"),
    Mode("upstream_equivalent", upstream=True),
)


@dataclass(frozen=True)
class Burst:
    """The sizes every mode shares."""

    jobs: int
    ceiling: int  # JIT configs per simulated minute and credential
    time_scale: float
    latency_ms: float
    jitter_ms: float
    jit_concurrency: int
    seed: int

    @property
    def window(self) -> float:
        """A simulated minute, in real seconds."""
        return MINUTE / self.time_scale

    def best_minutes(self, credentials: int) -> float:
        """The ceiling's own schedule: a minute's worth at once, then as much each minute, so
        the last runner comes ``ceil(jobs / per minute) - 1`` minutes in."""
        return max(1, math.ceil(self.jobs / (self.ceiling * credentials)) - 1)

    def pats(self, count: int) -> list[str]:
        return [PAT, *(f"{PAT}_{index}" for index in range(1, count))]

    def limits(self) -> dict[str, Any]:
        rule = {
            "points_per_window": self.ceiling * POINTS_PER_JIT,
            "window_seconds": self.window,
            "block_seconds": self.window,
            "max_concurrent": 100,
            "status": 429,
        }
        return {"classes": {"jit": rule}}

    def pacing(self, mode: Mode) -> dict[str, Any]:
        if mode.pacing == "off":
            return {"enabled": False}
        ceilings = {"jit": self.ceiling} if mode.pacing == "on" else {}
        return {"ceilings": ceilings, "window_seconds": self.window}


class _Ours:
    """Our listener in this process, serving the burst's scale set."""

    def __init__(self, sim: SimulatorProcess, burst: Burst, mode: Mode, runtime: NoopRuntime):
        settings = ListenerSettings(
            github_config_url=sim.config_url(ORG),
            credentials=[
                {"token": pat, "name": f"pat-{i}"}
                for i, pat in enumerate(burst.pats(mode.credentials))
            ],
            scale_sets=[{"name": NAME, "max_runners": burst.jobs}],
            metrics_port=None,
            owner_name="bench-limits",
            log_level="warning",
            jit_concurrency=burst.jit_concurrency,
            max_backoff_seconds=burst.window,
            pacing=burst.pacing(mode),
        )
        self.listener = Listener(settings, runtime=runtime)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[Listener]:
        stop = asyncio.Event()
        await self.listener.start()
        task = asyncio.create_task(self.listener.run_until(stop))
        try:
            await wait_until(lambda: all(self.listener.ready().values()), "the session")
            yield self.listener
        finally:
            stop.set()
            await task
            await self.listener.stop()


def _upstream(
    sim: SimulatorProcess, burst: Burst, runtime: NoopRuntime, ss_id: int
) -> contextlib.AbstractAsyncContextManager[UpstreamListener]:
    upstream = UpstreamListener(
        sim.config_url(ORG),
        PatCredentials(PAT),
        scale_set_id=ss_id,
        scale_set_name=NAME,
        max_runners=burst.jobs,
        runtime=runtime,
    )
    return serving(upstream, runtime)


def _refused_after_signal(client: Client) -> int:
    return sum(
        cls["refused_after_signal"]
        for credential in client.pacing_snapshot()
        for cls in credential["classes"].values()
    )


async def run_mode(burst: Burst, mode: Mode) -> dict[str, Any]:
    """One mode against a fresh simulator; the figures of its burst."""
    pats = burst.pats(mode.credentials)
    # A session outlives its silent owner for a simulated hour: the upstream-equivalent
    # listener polls nothing while its serial JIT calls wait out Retry-After.
    ttl = f"--session-ttl-seconds={3600 / burst.time_scale}"
    with SimulatorProcess(
        PAT,
        long_poll_seconds=5.0,
        seed=burst.seed,
        extra_args=[ttl, *(f"--pat={p}" for p in pats[1:])],
    ) as sim:
        sim.set_faults(
            latency_ms=burst.latency_ms / burst.time_scale,
            jitter_ms=burst.jitter_ms / burst.time_scale,
        )
        sim.set_limits(**burst.limits())
        ss_id = (await create_scale_set(sim, NAME, PAT, token_cache=TokenCache())).id
        runtime = NoopRuntime(run_jobs=False)
        listening = (
            _upstream(sim, burst, runtime, ss_id)
            if mode.upstream
            else _Ours(sim, burst, mode, runtime).serving()
        )
        ideal = burst.jobs / (burst.ceiling * mode.credentials) * burst.window
        async with listening as served:
            client = served.client
            assert client is not None
            started = time.monotonic()
            await asyncio.to_thread(sim.queue_jobs, [NAME], burst.jobs, 0.0)
            patience = 2 * ideal + 2 * burst.window  # then the mode did not finish
            await within(lambda: runtime.launched >= burst.jobs, patience, interval=0.05)
            refused_after_signal = _refused_after_signal(client)
        stats = await asyncio.to_thread(sim.stats)
    finished = runtime.launched >= burst.jobs
    last = runtime.launch_times[burst.jobs - 1] if finished else started + patience
    simulated = (last - started) * burst.time_scale
    limits = stats["limits"].values()
    jit = [by_class.get("jit", {}) for by_class in limits]
    return {
        "credentials": mode.credentials,
        "finished": finished,
        "runners_launched": min(runtime.launched, burst.jobs),
        "simulated_minutes_to_last_runner": round(simulated / MINUTE, 2),
        "throughput_percent_of_ceiling": round(
            100 * burst.best_minutes(mode.credentials) * MINUTE / simulated, 1
        )
        if finished
        else 0.0,
        "refused": sum(c.get("refused", 0) for by_class in limits for c in by_class.values()),
        "refused_after_first_signal": refused_after_signal,
        "blocked_simulated_minutes": round(
            sum(c.get("blocked_seconds", 0.0) for c in jit) * burst.time_scale / MINUTE, 2
        ),
        "jit_requests_per_credential": sorted(
            (c.get("requests", 0) + c.get("refused", 0) for c in jit), reverse=True
        ),
    }


async def run(
    *,
    jobs: int = 2000,
    ceiling_per_minute: int = 180,
    time_scale: float = 5.0,
    latency_ms: float = 50.0,
    jitter_ms: float = 10.0,
    jit_concurrency: int = 50,
    credentials: tuple[int, ...] = (1, 2, 4),
    modes: tuple[str, ...] = tuple(m.name for m in MODES),
    seed: int = 1,
) -> dict[str, Any]:
    """The modes, then pacing on with each credential count; the scenario's result object."""
    burst = Burst(
        jobs, ceiling_per_minute, time_scale, latency_ms, jitter_ms, jit_concurrency, seed
    )
    results = {m.name: await run_mode(burst, m) for m in MODES if m.name in modes}
    by_count = {
        str(count): results["pacing_on"]
        if count == 1 and "pacing_on" in results
        else await run_mode(burst, Mode(f"pacing_on_{count}", credentials=count))
        for count in credentials
    }
    return {
        "parameters": {
            "jobs": jobs,
            "ceiling_per_minute": ceiling_per_minute,
            "time_scale": time_scale,
            "latency_ms": latency_ms,
            "jitter_ms": jitter_ms,
            "jit_concurrency": jit_concurrency,
            "seed": seed,
        },
        "modes": results,
        "credentials": by_count,
    }
