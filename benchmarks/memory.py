"""Memory: RSS of a real listener process (``python -m gha_scalesets.listener run --config ...``).

The listener serves ``scale_sets`` scale sets of one org against the simulator, with the EC2
runtime on moto's server (runners are instances there; nothing runs in them). RSS is sampled
with psutil: ``steady`` is the median once every session polls, ``burst`` the peak while
``jobs_per_set`` jobs per scale set are scaled up to the same number of runners.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

from benchmarks.cloud import aws_fixtures
from benchmarks.harness import ORG, PAT
from gha_scalesets.scaleset import Client, PatCredentials
from gha_scalesets.scaleset.auth import TokenCache
from tests.support.aws import REGION, default_to_dummy_credentials, moto_server
from tests.support.processes import PROJECT_ROOT, SimulatorProcess

_SAMPLE_SECONDS = 0.1
_TIMEOUT = 300.0
MB = 1024 * 1024


async def _create(sim: SimulatorProcess, names: list[str]) -> None:
    async with Client(sim.config_url(ORG), PatCredentials(PAT), token_cache=TokenCache()) as c:
        group = await c.get_runner_group_by_name("Default")
        for name in names:
            await c.create_scale_set(name=name, runner_group_id=group.id)


def _settings(
    sim: SimulatorProcess,
    endpoint: str,
    fixtures: dict[str, Any],
    names: list[str],
    max_runners: int,
) -> dict[str, Any]:
    return {
        "github_config_url": sim.config_url(ORG),
        "credentials": {"token": PAT},
        "runtime": "ec2",
        "ec2": {
            "launch_template_id": fixtures["template"],
            "instance_types": ["m5.large"],
            "subnet_ids": fixtures["subnets"],
            "spot": False,
        },
        "aws": {"region": REGION, "endpoint_url": endpoint},
        "scale_sets": [{"name": n, "max_runners": max_runners} for n in names],
        "metrics_port": None,
        "owner_name": "bench-memory",
        "log_level": "warning",
    }


def _sample_until(process: psutil.Process, done: Any, what: str) -> list[float]:
    samples: list[float] = []
    deadline = time.monotonic() + _TIMEOUT
    while not done():
        samples.append(process.memory_info().rss / MB)
        if time.monotonic() > deadline:
            raise TimeoutError(f"memory: timed out waiting for {what}")
        time.sleep(_SAMPLE_SECONDS)
    samples.append(process.memory_info().rss / MB)
    return samples


def run(*, scale_sets: int = 10, jobs_per_set: int = 50, seed: int = 1) -> dict[str, Any]:
    names = [f"mem-{i}" for i in range(scale_sets)]
    default_to_dummy_credentials()
    with (
        moto_server(serialized=False) as endpoint,
        SimulatorProcess(PAT, long_poll_seconds=5.0, seed=seed) as sim,
        tempfile.TemporaryDirectory() as tmp,
    ):
        fixtures = aws_fixtures(endpoint)
        asyncio.run(_create(sim, names))
        config = Path(tmp) / "listener.yaml"
        config.write_text(yaml.safe_dump(_settings(sim, endpoint, fixtures, names, jobs_per_set)))
        config.chmod(0o600)
        child = subprocess.Popen(
            [sys.executable, "-m", "gha_scalesets.listener", "run", "--config", str(config)],
            cwd=PROJECT_ROOT,
            env=os.environ | {"PYTHONPATH": str(PROJECT_ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            process = psutil.Process(child.pid)
            polls = lambda: sim.stats()["requests"].get("GET /message", 0)  # noqa: E731
            _sample_until(process, lambda: polls() >= 2 * scale_sets, "every session to poll")
            steady = _sample_until(process, _after(3.0), "the steady-state window")
            for name in names:
                sim.queue_jobs([name], jobs_per_set, 60.0)
            wanted = scale_sets * jobs_per_set
            burst = _sample_until(
                process,
                lambda: sim.stats()["runners"]["registered"] >= wanted,
                "every runner to be registered",
            )
            burst += _sample_until(process, _after(2.0), "the launches to finish")
        finally:
            child.terminate()
            child.wait(timeout=15)
    return {
        "parameters": {
            "scale_sets": scale_sets,
            "jobs_per_set": jobs_per_set,
            "runtime": "ec2 (moto)",
        },
        "steady_rss_mb": round(statistics.median(steady), 1),
        "burst_peak_rss_mb": round(max(burst), 1),
        "runners_launched": scale_sets * jobs_per_set,
    }


def _after(seconds: float) -> Any:
    end = time.monotonic() + seconds
    return lambda: time.monotonic() >= end
