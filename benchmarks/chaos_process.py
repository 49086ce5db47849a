"""Process-level faults: ``kill -9`` of the listener at a random point, SIGTERM + upgrade.

The listener runs as ``python -m gha_scalesets.listener run`` (the deployed entry point) with the
local runtime (runner processes that outlive it, found again through its state directory) and the
DynamoDB registry on moto, as a supervisor would restart it: at once, same settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.chaos_checks import ScenarioResult
from benchmarks.chaos_scenarios import TABLE, Size, _create_scale_set, listener_settings, simulator
from gha_scalesets.listener.registry.dynamodb import DynamoDBRegistry, create_table
from gha_scalesets.simulator.testing import SimulatorServer
from tests.support import aws
from tests.support.canaries import Canaries, files_text
from tests.support.observe import FleetPeak, exposition_sum
from tests.support.processes import free_port
from tests.support.waits import eventually

_STOP_TIMEOUT_SECONDS = 15.0


@dataclass
class ListenerProcess:
    """One ``python -m gha_scalesets.listener run`` with its output captured in files under
    ``workdir``.
    """

    workdir: Path
    settings: dict[str, Any]
    label: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.settings['metrics_port']}"

    def start(self, moto_url: str) -> ListenerProcess:
        config = self.workdir / f"{self.label}.yaml"
        # The token travels in the environment, as from a Kubernetes/ECS secret: never on disk.
        settings = {k: v for k, v in self.settings.items() if k != "credentials"}
        config.write_text(yaml.safe_dump(settings))
        env = {**os.environ, **aws.DUMMY_CREDENTIALS, "PYTHONUNBUFFERED": "1"}
        env["LISTENER_CREDENTIALS"] = json.dumps(self.settings["credentials"])
        env["AWS_ENDPOINT_URL"] = moto_url
        with (self.workdir / f"{self.label}.out").open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gha_scalesets.listener", "run", "--config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        return self

    async def ready(self, within: float) -> bool:
        async def check() -> bool:
            try:
                async with httpx.AsyncClient(timeout=2) as http:
                    return (await http.get(f"{self.metrics_url}/readyz")).status_code == 200
            except httpx.HTTPError:
                return False

        return await eventually(check, within, interval=0.1)

    async def metrics(self) -> str:
        async with httpx.AsyncClient(timeout=5) as http:
            return (await http.get(f"{self.metrics_url}/metrics")).text

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def wait(self, within: float = _STOP_TIMEOUT_SECONDS) -> int | None:
        assert self.process is not None
        try:
            return await asyncio.to_thread(self.process.wait, within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return None


@contextlib.contextmanager
def _world(seed: int, moto_url: str, **sim_options: Any) -> Iterator[SimulatorServer]:
    aws.reset(moto_url)
    create_table(aws.client("dynamodb", moto_url), TABLE)
    with simulator(seed, **sim_options) as sim:
        yield sim


def _process_settings(sim: SimulatorServer, name: str, size: Size, workdir: Path, **extra: Any):
    return listener_settings(
        sim,
        name,
        size,
        metrics_port=free_port(),
        registry={"type": "dynamodb", "table_name": TABLE, "cache_ttl_seconds": 1},
        aws={"region": aws.REGION},
        local={"state_dir": str(workdir / "runners"), "stop_grace_seconds": 2, **extra},
    )


async def _close_run(
    result: ScenarioResult,
    peak: FleetPeak,
    sim: SimulatorServer,
    survivor: ListenerProcess,
    world: tuple[str, int, Path, Size],
) -> int | None:
    """Record the run, settle the world (``moto_url, scale set id, workdir, size``), check the
    surviving listener recovered and stop it; its exit code."""
    result.peak_runners = peak.peak
    result.record_simulator(sim)
    result.orphans, result.registry_consistent = await _settle(sim, *world)
    result.recovered = await survivor.ready(1.0)
    survivor.signal(signal.SIGTERM)
    return await survivor.wait()


async def _settle(
    sim: SimulatorServer, moto_url: str, ss_id: int, workdir: Path, size: Size
) -> tuple[dict[str, int], bool]:
    registry = DynamoDBRegistry(TABLE, aws.client("dynamodb", moto_url))

    async def leftovers() -> dict[str, int]:
        return {
            "github_runners": sim.stats()["runners"]["registered"],
            "runner_processes": len(list((workdir / "runners").glob("*.json"))),
            "registry_runners": await registry.count(ss_id),
        }

    async def idle() -> bool:
        return not any((await leftovers()).values())

    await eventually(idle, size.idle_seconds, interval=0.25)
    left = {k: v for k, v in (await leftovers()).items() if v}
    consistent = len(await registry.list(ss_id)) == await registry.count(ss_id) == 0
    return left, consistent


async def run_kill9(size: Size, moto_url: str, workdir: Path, run_index: int) -> ScenarioResult:
    """Burst, ``kill -9`` at a random point, restart at once; the new process must finish it."""
    rng = random.Random(run_index)
    result = ScenarioResult(f"kill-9-run-{run_index}", "kill-9", size.jobs, faults_injected=1)
    result.max_runners = size.max_runners
    name = f"chaos-kill-{run_index}"
    with _world(run_index, moto_url) as sim:
        scale_set = await _create_scale_set(sim, name)
        settings = _process_settings(sim, name, size, workdir, keep_runners_on_exit=True)
        first = ListenerProcess(workdir, settings, f"kill{run_index}-a").start(moto_url)
        second = ListenerProcess(workdir, settings, f"kill{run_index}-b")
        async with FleetPeak(sim) as peak:
            if not await first.ready(size.deadline_seconds):
                result.notes.append("the first listener never became ready")
            sim.queue_jobs([name], size.jobs, duration_seconds=size.job_seconds * 3)
            await asyncio.sleep(rng.uniform(0.1, size.hold_seconds * 2))  # the random point
            first.signal(signal.SIGKILL)
            killed = time.monotonic()
            await first.wait()
            second.start(moto_url)
            await result.time_recovery(sim, killed, size.jobs, size.deadline_seconds)
        code = await _close_run(result, peak, sim, second, (moto_url, scale_set.id, workdir, size))
        if code != 0:
            result.notes.append("the restarted listener did not exit cleanly on SIGTERM")
    result.leaks = Canaries().leaks(files_text(workdir))
    return result


async def run_upgrade(size: Size, moto_url: str, workdir: Path) -> ScenarioResult:
    """SIGTERM during a burst, then a new listener version takes the session over."""
    result = ScenarioResult("sigterm-upgrade", "sigterm-upgrade", size.jobs, faults_injected=1)
    result.max_runners = size.max_runners
    name = "chaos-upgrade"
    with _world(7, moto_url) as sim:
        scale_set = await _create_scale_set(sim, name)
        settings = _process_settings(sim, name, size, workdir, keep_runners_on_exit=True)
        old = ListenerProcess(workdir, {**settings, "owner_name": "listener-v1"}, "v1")
        new = ListenerProcess(workdir, {**settings, "owner_name": "listener-v2"}, "v2")
        async with FleetPeak(sim) as peak:
            old.start(moto_url)
            await old.ready(size.deadline_seconds)
            sim.queue_jobs([name], size.jobs, duration_seconds=size.job_seconds * 3)
            await asyncio.sleep(size.hold_seconds)
            old.signal(signal.SIGTERM)
            stopped = time.monotonic()
            if await old.wait() != 0:
                result.notes.append("the old listener did not exit 0 on SIGTERM")
            new.start(moto_url)
            await new.ready(size.deadline_seconds)
            handover = time.monotonic() - stopped
            await result.time_recovery(sim, stopped, size.jobs, size.deadline_seconds)
        conflicts = exposition_sum(
            await new.metrics(), "gha_listener_session_events_total", event="conflict"
        )
        if conflicts:
            result.notes.append("the new version had to wait out a session conflict")
        result.extra["handover_seconds"] = round(handover, 2)
        await _close_run(result, peak, sim, new, (moto_url, scale_set.id, workdir, size))
    result.leaks = Canaries().leaks(files_text(workdir))
    return result
