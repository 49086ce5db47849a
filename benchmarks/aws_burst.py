"""AWS launch throughput within AWS's own API limits: a burst of runners on EC2 and on ECS.

The real listener scales a burst of jobs onto the real EC2 and ECS runtimes; between them and
moto's server sits :class:`~tests.support.aws_throttle.ThrottlingProxy` with AWS's
documented token buckets for one account and Region (docs/runtimes.md, "API limits"). Each
runtime runs the burst twice, one run each:

- *today's path*: one ``RunInstances`` / ``RunTask`` and one ``PutParameter`` per runner, sent
  as fast as they go (``launch_batch_size`` 1, no pacing); throttling is retried with backoff
  (5 attempts), a runner out of attempts is released and the scaler launches it again;
- *the new path*: the defaults (``RunInstances`` per scale set and subnet, ``RunTask`` with
  ``count`` up to 10, every call paced by the runtime's copy of the buckets).

Measured: seconds from queueing the jobs to every one of them having a launched runner (an
instance or task whose JIT config is stored), throttling answers the proxy sent, AWS calls per
runner. Startup reconciliation is excluded (it happens before the jobs are queued).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

from benchmarks.cloud import aws_fixtures, listening
from benchmarks.harness import PAT
from gha_scalesets.listener.config import AwsConfig, Ec2RuntimeConfig, EcsRuntimeConfig
from gha_scalesets.listener.runtimes._aws_runtime import AwsRuntime
from gha_scalesets.listener.runtimes._pacing import Pacer
from gha_scalesets.listener.runtimes.base import (
    LaunchResult,
    RunnerSpec,
    RuntimeEvent,
    RuntimeRunner,
)
from gha_scalesets.listener.runtimes.ec2 import Ec2Runtime
from gha_scalesets.listener.runtimes.ecs import EcsRuntime
from tests.support.aws import REGION, default_to_dummy_credentials, moto_server
from tests.support.aws_throttle import ThrottleModel, ThrottlingProxy, documented_buckets
from tests.support.processes import SimulatorProcess

PATHS = ("today", "new")
LAUNCHES = {"ec2": "ec2:RunInstances", "ecs": "ecs:RunTask"}


class TimedRuntime:
    """Passes everything to a cloud runtime; notes when each runner was launched and sets
    ``all_launched`` at the ``wanted``-th."""

    def __init__(self, cloud: AwsRuntime[Any], wanted: int) -> None:
        self.cloud = cloud
        self.name = cloud.name
        self.api_calls = cloud.api_calls
        self.launched_at: list[float] = []
        self.failed = 0
        self.all_launched = asyncio.Event()
        self._wanted = wanted

    async def launch(self, runners: Sequence[RunnerSpec]) -> list[LaunchResult]:
        results = await self.cloud.launch(runners)
        now = time.monotonic()
        for result in results:
            if result.provider_id is not None:
                self.launched_at.append(now)
            else:
                self.failed += 1
        if len(self.launched_at) >= self._wanted:
            self.all_launched.set()
        return results

    async def terminate(self, provider_ids: Sequence[str]) -> None:
        await self.cloud.terminate(provider_ids)

    async def list_runners(self, scale_set_id: int) -> list[RuntimeRunner]:
        return await self.cloud.list_runners(scale_set_id)

    def events(self) -> AsyncIterator[RuntimeEvent]:
        return self.cloud.events()

    async def close(self) -> None:
        await self.cloud.close()


def build_runtime(kind: str, path: str, endpoint: str, fixtures: dict[str, Any]) -> AwsRuntime[Any]:
    """The ``kind`` runtime on ``endpoint``, configured for ``path``."""
    aws = AwsConfig(region=REGION, endpoint_url=endpoint)
    today: dict[str, Any] = {"launch_batch_size": 1} if path == "today" else {}
    pacer = Pacer({}) if path == "today" else None
    if kind == "ec2":
        config = Ec2RuntimeConfig(
            launch_template_id=fixtures["template"],
            instance_types=["m5.large"],
            subnet_ids=fixtures["subnets"],
            spot=False,  # the market does not change the API limits
            **today,
        )
        return Ec2Runtime(config, aws, pacer=pacer)
    ecs = EcsRuntimeConfig(
        cluster=fixtures["cluster"],
        task_definition="runner",
        subnet_ids=fixtures["subnets"],
        **today,
    )
    return EcsRuntime(ecs, aws, pacer=pacer)


async def _burst(
    sim: SimulatorProcess, runtime: TimedRuntime, name: str, runners: int, deadline: float
) -> dict[str, Any]:
    # Neither reconciliation nor the never-online check may run during the burst: the runners
    # never come online here, the launches are what is measured.
    quiet = {"reconcile_interval_seconds": 3600, "launch_timeout_seconds": 3600}
    async with listening(sim, runtime, name, runners, **quiet):
        before = Counter(runtime.api_calls)
        started = time.monotonic()
        await asyncio.to_thread(sim.queue_jobs, [name], runners, 60.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runtime.all_launched.wait(), deadline)
        calls = Counter(runtime.api_calls)
        calls.subtract(before)
    done = len(runtime.launched_at) >= runners
    made = sum(calls.values())
    return {
        "all_launched": done,
        "runners_launched": min(len(runtime.launched_at), runners),
        "seconds_to_all_launched": round(sorted(runtime.launched_at)[runners - 1] - started, 1)
        if done
        else None,
        "failed_launches": runtime.failed,
        "aws_calls": made,
        "calls_per_runner": round(made / runners, 3),
        "calls": {op: n for op, n in sorted(calls.items()) if n},
    }


async def run(*, runners: int = 500, deadline_seconds: float = 900.0) -> dict[str, Any]:
    """Both runtimes, both paths, under the documented limits; the simulator without latency."""
    results: dict[str, Any] = {
        "parameters": {
            "runners": runners,
            "deadline_seconds": deadline_seconds,
            "buckets": {
                b.name: {"capacity": b.rate.burst, "refill_per_second": b.rate.per_second}
                for b in documented_buckets()
            },
        }
    }
    default_to_dummy_credentials()
    with moto_server(serialized=False) as moto, SimulatorProcess(PAT, long_poll_seconds=5.0) as sim:
        for kind in ("ec2", "ecs"):
            paths: dict[str, Any] = {}
            for path in PATHS:
                fixtures = await asyncio.to_thread(aws_fixtures, moto)
                model = ThrottleModel(documented_buckets())
                with ThrottlingProxy(moto, model).running() as proxy:
                    cloud = build_runtime(kind, path, proxy.url, fixtures)
                    runtime = TimedRuntime(cloud, runners)
                    outcome = await _burst(
                        sim, runtime, f"{kind}-{path}", runners, deadline_seconds
                    )
                outcome["throttling_answers"] = sum(model.throttled.values())
                outcome["launch_calls"] = outcome["calls"].get(LAUNCHES[kind], 0)
                paths[path] = outcome
            today, new = paths["today"], paths["new"]
            if today["all_launched"] and new["all_launched"]:
                paths["speedup"] = round(
                    today["seconds_to_all_launched"] / max(new["seconds_to_all_launched"], 0.1), 1
                )
            results[kind] = paths
    return results
