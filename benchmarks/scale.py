"""Scale: one listener process with N scale sets, and replicas that share 300.

Real time and GitHub's real 50 s long-poll hold (the simulator in its own process holds every
poll 50 s), so the listener sees the service's pacing. Per N, one listener process
(:mod:`benchmarks.scale_child`: the real ``Listener``, a runtime that records launches):

- time from process start to every scale set holding a session;
- over a steady window after the first polls spread (one hold after the last session):
  GitHub requests per scale set per hour **against the wall clock** (requests in the window /
  scale sets / window hours: a set polled less often than every hold shows as fewer), RSS
  (psutil, median and peak), CPU seconds per minute, event-loop lag p99 / max (a 0.1 s timer);
- ``probes`` jobs, one on each of as many random scale sets, one after the other: queued ->
  runner launched (wall clock, both processes on this machine);
- the stop: its duration and how many sessions it deleted.

Replicas: three ``python -m gha_scalesets.listener run`` processes serve the same 300 scale
sets (DynamoDB registry and leases on moto, local runtime, default lease timings): how many
each leads after the first two start, after a third joins (and how long until the split is
even within one), after one is killed with SIGKILL (same), and the jobs queued on random
scale sets at the join and at the kill: all must complete, none over max, no duplicate names.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
import yaml

from benchmarks import chaos_aws
from benchmarks.chaos_process import ListenerProcess
from benchmarks.harness import ORG, PAT, percentile, requests_between, total, wait_until
from gha_scalesets.listener.registry.dynamodb import create_table
from gha_scalesets.scaleset.auth import TokenCache
from tests.support import aws
from tests.support.aws import default_to_dummy_credentials, moto_server
from tests.support.github import create_scale_sets
from tests.support.observe import FleetPeak, exposition_sum
from tests.support.processes import PROJECT_ROOT, SimulatorProcess, free_port

SERVICE_HOLD_SECONDS = 50.0
HOUR = 3600.0
CREATE_SESSION = "POST /_apis/runtime/runnerscalesets/{id}/sessions"
DELETE_SESSION = "DELETE /_apis/runtime/runnerscalesets/{id}/sessions/{session_id}"
MB = 1024 * 1024
_TABLE = "scale-runners"


async def _stats(sim: SimulatorProcess) -> dict[str, Any]:
    return await asyncio.to_thread(sim.stats)


class Child:
    """:mod:`benchmarks.scale_child` in its own process; its stdout events read by a thread."""

    def __init__(self, workdir: Path, settings: dict[str, Any]) -> None:
        self._config = workdir / "listener.yaml"
        self._config.write_text(yaml.safe_dump(settings))
        self._log = workdir / "listener.log"
        self._loop = asyncio.get_running_loop()
        self._replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.launched: list[tuple[str, float]] = []  # (scale set, wall-clock time)
        self._launch = asyncio.Event()
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> Child:
        env = os.environ | {
            "PYTHONPATH": str(PROJECT_ROOT),
            "LISTENER_CREDENTIALS": json.dumps({"token": PAT}),  # never on disk
        }
        with self._log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.scale_child", "--config", str(self._config)],
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            event = json.loads(line)
            self._loop.call_soon_threadsafe(self._on_event, event)

    def _on_event(self, event: dict[str, Any]) -> None:
        if event["event"] == "launched":
            self.launched.append((event["scale_set"], event["at"]))
            self._launch.set()
        else:
            self._replies.put_nowait(event)

    def _command(self, command: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    async def reply(self, event: str, within: float = 120.0) -> dict[str, Any]:
        while True:
            reply = await asyncio.wait_for(self._replies.get(), within)
            if reply["event"] == event:
                return reply

    async def lag(self) -> list[float]:
        self._command("lag")
        return list((await self.reply("lag"))["samples"])

    async def launched_for(self, name: str, within: float = 30.0) -> float:
        """When a runner of scale set ``name`` was launched (waits for it)."""
        deadline = time.monotonic() + within
        while True:
            found = [at for scale_set, at in self.launched if scale_set == name]
            if found:
                return found[0]
            self._launch.clear()
            await asyncio.wait_for(self._launch.wait(), max(0.0, deadline - time.monotonic()))

    async def stop(self) -> float:
        self._command("stop")
        stopped = await self.reply("stopped")
        assert self.process is not None
        await asyncio.to_thread(self.process.wait, 60)
        return float(stopped["seconds"])

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Usage:
    """RSS samples (MB) of a process, once a second while running."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.rss: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.rss.append(self.process.memory_info().rss / MB)
            await asyncio.sleep(1.0)

    def cpu_seconds(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    def __enter__(self) -> Usage:
        self._task = asyncio.create_task(self._sample())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def run_one(
    scale_sets: int, *, window: float, probes: int, hold: float, seed: int
) -> dict[str, Any]:
    """One listener process with ``scale_sets`` scale sets (see the module docstring)."""
    names = [f"scale-{i}" for i in range(scale_sets)]
    with (
        SimulatorProcess(PAT, long_poll_seconds=hold, seed=seed) as sim,
        tempfile.TemporaryDirectory() as tmp,
    ):
        ids = [s.id for s in await create_scale_sets(sim, names, PAT, token_cache=TokenCache())]
        settings = {
            "github_config_url": sim.config_url(ORG),
            "scale_sets": [{"scale_set_id": i, "max_runners": 10} for i in ids],
            "metrics_port": None,
            "owner_name": "bench-scale",
            "log_level": "warning",
            "capacity": {"poll_stagger_seconds": hold},
        }
        child = Child(Path(tmp), settings)
        started = time.monotonic()
        child.start()
        try:
            assert child.process is not None
            usage = Usage(child.process.pid)
            await wait_until(
                lambda: sim.stats()["requests"].get(CREATE_SESSION, 0) >= scale_sets,
                f"{scale_sets} sessions",
            )
            sessions_seconds = time.monotonic() - started
            await asyncio.sleep(hold + 2)  # the first polls spread over one hold
            await child.lag()  # startup's samples are not the steady state's
            before, cpu_before = await _stats(sim), usage.cpu_seconds()
            with usage:
                await asyncio.sleep(window)
                after, cpu_after = await _stats(sim), usage.cpu_seconds()
            elapsed = after["monotonic"] - before["monotonic"]  # when the simulator counted
            lag = await child.lag()
            requests = requests_between(before, after)
            set_hours = scale_sets * elapsed / HOUR
            latencies = []
            for name in random.Random(seed).sample(names, min(probes, scale_sets)):
                queued = time.time()
                await asyncio.to_thread(sim.queue_jobs, [name], 1, 60.0)
                latencies.append(await child.launched_for(name) - queued)
            deletes_before = (await _stats(sim))["requests"].get(DELETE_SESSION, 0)
            stop_seconds = await child.stop()
            deleted = (await _stats(sim))["requests"].get(DELETE_SESSION, 0) - deletes_before
        finally:
            child.kill()
    return {
        "scale_sets": scale_sets,
        "seconds_to_all_sessions": round(sessions_seconds, 1),
        "window_seconds": round(elapsed, 1),
        "requests_per_scale_set_hour": round(total(requests) / set_hours, 1),
        "polls_per_scale_set_hour": round(requests.get("GET /message", 0) / set_hours, 1),
        "window_requests": requests,
        "rss_mb_median": round(statistics.median(usage.rss), 1),
        "rss_mb_peak": round(max(usage.rss), 1),
        "cpu_seconds_per_minute": round((cpu_after - cpu_before) / elapsed * 60, 2),
        "loop_lag_p99_ms": round(percentile(lag, 99) * 1000, 1),
        "loop_lag_max_ms": round(max(lag) * 1000, 1),
        "jobs_launched": len(latencies),
        "job_to_launch_ms_p50": round(percentile(latencies, 50) * 1000, 1),
        "job_to_launch_ms_max": round(max(latencies) * 1000, 1),
        "stop_seconds": stop_seconds,
        "sessions_deleted_at_stop": deleted,
    }


# -- replicas ---------------------------------------------------------------------------------


async def _leading(replicas: Sequence[ListenerProcess]) -> list[int]:
    """Scale sets each replica leads, from its /metrics (0 for one that does not answer)."""
    counts = []
    for replica in replicas:
        try:
            counts.append(int(exposition_sum(await replica.metrics(), "gha_listener_leader")))
        except Exception:
            counts.append(0)
    return counts


def _even(counts: Sequence[int], total_sets: int) -> bool:
    """Every scale set led, each replica within one of an even split."""
    if not counts:
        return False
    share = total_sets / len(counts)
    return sum(counts) == total_sets and all(abs(c - share) <= 1 for c in counts)


async def _until_even(replicas: Sequence[ListenerProcess], sets: int, within: float) -> float:
    """Seconds until the replicas split the scale sets evenly (raises after ``within``)."""
    started = time.monotonic()
    split: list[int] = []
    while not _even(split, sets):
        if time.monotonic() - started > within:
            raise TimeoutError(f"scale: no even split within {within:.0f} s: {split}")
        await asyncio.sleep(0.5)
        split = await _leading(replicas)
    return time.monotonic() - started


def _queue(sim: SimulatorProcess, names: Sequence[str], rng: random.Random, jobs: int) -> None:
    for name in rng.sample(list(names), jobs):
        sim.queue_jobs([name], 1, 1.0)


async def run_replicas(
    *, scale_sets: int, replicas: int, jobs: int, hold: float, seed: int
) -> dict[str, Any]:
    """Replicas sharing ``scale_sets`` through a join and a kill -9 (module docstring)."""
    rng = random.Random(seed)
    names = [f"shared-{i}" for i in range(scale_sets)]
    max_runners = 2
    default_to_dummy_credentials()
    chaos_aws.serialise_dynamodb()  # moto's concurrent DynamoDB writes can undo each other
    with (
        moto_server(serialized=False) as moto_url,
        SimulatorProcess(PAT, long_poll_seconds=hold, seed=seed) as sim,
        tempfile.TemporaryDirectory() as tmp,
    ):
        workdir = Path(tmp)
        create_table(aws.client("dynamodb", moto_url), _TABLE)
        ids = [s.id for s in await create_scale_sets(sim, names, PAT, token_cache=TokenCache())]

        def replica(label: str) -> ListenerProcess:
            settings = {
                "github_config_url": sim.config_url(ORG),
                "credentials": {"token": PAT},
                "scale_sets": [{"scale_set_id": i, "max_runners": max_runners} for i in ids],
                "metrics_port": free_port(),
                "metrics_host": "127.0.0.1",
                "owner_name": f"replica-{label}",
                "log_level": "warning",
                "registry": {"type": "dynamodb", "table_name": _TABLE},
                "aws": {"region": aws.REGION},
                "local": {"state_dir": str(workdir / "runners"), "keep_runners_on_exit": True},
                "scale_down_grace_seconds": 0,
            }
            return ListenerProcess(workdir, settings, label).start(moto_url)

        first = [replica("a"), replica("b")]
        started = list(first)
        try:
            initial_seconds = await _until_even(first, scale_sets, 300)
            initial = await _leading(first)
            async with FleetPeak(sim, interval=0.5) as peak:
                third = replica("c")
                started.append(third)
                joined = [*first, third]
                _queue(sim, names, rng, jobs)
                join_seconds = await _until_even(joined, scale_sets, 300)
                after_join = await _leading(joined)
                killed = first[0]
                killed.signal(signal.SIGKILL)
                await killed.wait()
                survivors = [first[1], third]
                _queue(sim, names, rng, jobs)
                kill_seconds = await _until_even(survivors, scale_sets, 300)
                after_kill = await _leading(survivors)
                await wait_until(
                    lambda: sim.stats()["jobs"]["completed"] >= 2 * jobs, "every job to complete"
                )
            handovers = [
                exposition_sum(await r.metrics(), "gha_listener_lease_handovers_total")
                for r in survivors
            ]
            world = await _stats(sim)
        finally:
            for process in started:
                if process.process is not None and process.process.poll() is None:
                    process.signal(signal.SIGTERM)
                    await process.wait()
    return {
        "replicas": replicas,
        "scale_sets": scale_sets,
        "two_replicas_split": initial,
        "two_replicas_seconds": round(initial_seconds, 1),
        "after_join_split": after_join,
        "join_rebalance_seconds": round(join_seconds, 1),
        "after_kill_split": after_kill,
        "kill_rebalance_seconds": round(kill_seconds, 1),
        "handovers_by_survivors": int(sum(handovers)),
        "jobs": 2 * jobs,
        "jobs_lost": 2 * jobs - world["jobs"]["completed"],
        "max_runners_exceeded": sum(
            max(0, n - max_runners) for n in peak.peak_by_scale_set.values()
        ),
        "duplicate_names": world["runners"]["duplicate_names"],
    }


async def run(
    *,
    sizes: Sequence[int] = (10, 100, 500, 1000, 2000),
    window_seconds: float = 150.0,
    probes: int = 10,
    hold_seconds: float = SERVICE_HOLD_SECONDS,
    replica_sets: int = 300,
    replicas: int = 3,
    replica_jobs: int = 10,
    seed: int = 1,
) -> dict[str, Any]:
    """One listener at each size, then the replicas."""
    single = [
        await run_one(n, window=window_seconds, probes=probes, hold=hold_seconds, seed=seed)
        for n in sizes
    ]
    shared = (
        await run_replicas(
            scale_sets=replica_sets,
            replicas=replicas,
            jobs=replica_jobs,
            hold=hold_seconds,
            seed=seed,
        )
        if replicas
        else None
    )
    return {
        "parameters": {
            "sizes": list(sizes),
            "hold_seconds": hold_seconds,
            "window_seconds": window_seconds,
            "probes": probes,
            "replica_sets": replica_sets,
            "replicas": replicas,
            "seed": seed,
        },
        "single": single,
        "replicas": shared,
    }
