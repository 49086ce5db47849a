"""Cloud lookups: describe/list calls per scaling decision, registry vs. describe-every-decision.

The real listener scales a burst onto the real EC2 and ECS runtimes against moto's server on
127.0.0.1. A *scaling decision* is one ``Scaler.converge`` step, which reads the current runner
count once. Ours reads it from the runner registry; the baseline (what
terraform-aws-github-runner did before its runner-count cache, #4710) answers the same read by
listing the cloud (``DescribeInstances`` / ``ListTasks`` + ``DescribeTasks``) every time.
Startup reconciliation is excluded: it lists once by design, in both modes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from benchmarks.harness import ORG, PAT, wait_until
from gha_scalesets.listener.app import Listener
from gha_scalesets.listener.config import (
    AwsConfig,
    Ec2RuntimeConfig,
    EcsRuntimeConfig,
    ListenerSettings,
)
from gha_scalesets.listener.registry.base import Registry
from gha_scalesets.listener.registry.memory import MemoryRegistry
from gha_scalesets.listener.runtimes.base import RunnerPhase, Runtime
from gha_scalesets.listener.runtimes.ec2 import Ec2Runtime
from gha_scalesets.listener.runtimes.ecs import EcsRuntime
from gha_scalesets.scaleset import Client, PatCredentials
from gha_scalesets.scaleset.auth import TokenCache
from tests.support import aws
from tests.support.processes import SimulatorProcess

_ALIVE = frozenset({RunnerPhase.PENDING, RunnerPhase.RUNNING})
_TIMEOUT = 300.0
_WAVES = 10


def describe_or_list(api_calls: Counter[str]) -> int:
    """Calls that read instance/task state (EC2/ECS ``Describe*``/``List*``; the SSM sweep of
    reconciliation is not a runner lookup)."""
    return sum(
        n
        for op, n in api_calls.items()
        if op.split(":", 1)[0] in ("ec2", "ecs")
        and op.split(":", 1)[1].startswith(("Describe", "List"))
    )


class CountingRegistry(MemoryRegistry):
    """The memory registry, counting scaling decisions (one ``count`` read each)."""

    def __init__(self) -> None:
        super().__init__()
        self.decisions = 0

    async def count(self, scale_set_id: int) -> int:
        self.decisions += 1
        return await super().count(scale_set_id)


class DescribeEveryDecision(CountingRegistry):
    """Baseline: the runner count comes from listing the cloud on every decision."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self._runtime = runtime

    async def count(self, scale_set_id: int) -> int:
        self.decisions += 1
        listed = await self._runtime.list_runners(scale_set_id)
        return sum(1 for r in listed if r.phase in _ALIVE)


def aws_fixtures(endpoint: str) -> dict[str, Any]:
    """A fresh moto: a VPC with two subnets, a runner launch template, an ECS cluster and task
    definition."""
    aws.reset(endpoint)
    return {
        "subnets": aws.create_network(endpoint).subnet_ids,
        "template": aws.create_launch_template(endpoint),
        "cluster": aws.create_ecs_cluster(endpoint, pin_tasks=False),
    }


def build_runtime(kind: str, endpoint: str, fixtures: dict[str, Any]) -> Runtime:
    config = AwsConfig(region=aws.REGION, endpoint_url=endpoint)
    if kind == "ec2":
        runtime_config = Ec2RuntimeConfig(
            launch_template_id=fixtures["template"],
            instance_types=["m5.large"],
            subnet_ids=fixtures["subnets"],
            spot=False,
        )
        return Ec2Runtime(runtime_config, config)
    return EcsRuntime(
        EcsRuntimeConfig(
            cluster=fixtures["cluster"],
            task_definition=aws.TASK_DEFINITION,
            subnet_ids=fixtures["subnets"],
        ),
        config,
    )


@contextlib.asynccontextmanager
async def listening(
    sim: SimulatorProcess,
    runtime: Runtime,
    name: str,
    max_runners: int,
    *,
    registry: Registry | None = None,
    **settings: Any,
) -> AsyncIterator[Listener]:
    """A new scale set ``name`` served by a listener on ``runtime``, after its startup (the
    session is ready, startup reconciliation and the first poll are done)."""
    async with Client(sim.config_url(ORG), PatCredentials(PAT), token_cache=TokenCache()) as c:
        group = await c.get_runner_group_by_name("Default")
        await c.create_scale_set(name=name, runner_group_id=group.id)
    config = ListenerSettings(
        github_config_url=sim.config_url(ORG),
        credentials={"token": PAT},
        scale_sets=[{"name": name, "max_runners": max_runners}],
        metrics_port=None,
        owner_name=f"bench-{name}",
        log_level="warning",
        **settings,
    )
    listener = Listener(config, registry=registry, runtime=runtime)
    stop = asyncio.Event()
    await listener.start()
    serving = asyncio.create_task(listener.run_until(stop))
    try:
        await wait_until(lambda: all(listener.ready().values()), "the session")
        await asyncio.sleep(0.3)
        yield listener
    finally:
        stop.set()
        await serving
        await listener.stop()


async def _burst(
    sim: SimulatorProcess, runtime: Runtime, registry: CountingRegistry, name: str, jobs: int
) -> dict[str, Any]:
    async with listening(sim, runtime, name, jobs, registry=registry) as listener:
        ss_id = next(iter(listener.workers))
        calls_before, decisions_before = Counter(runtime.api_calls), registry.decisions
        for _ in range(_WAVES):  # jobs keep arriving: one decision per wave at least
            await asyncio.to_thread(sim.queue_jobs, [name], jobs // _WAVES, 60.0)
            await asyncio.sleep(0.3)
        wanted = jobs // _WAVES * _WAVES

        async def all_launched() -> bool:
            # Runners, not launch calls: one RunInstances or RunTask starts a batch of them.
            records = await registry.list(ss_id)
            return sum(r.provider_id is not None for r in records) >= wanted

        await wait_until(all_launched, f"{runtime.name} to launch {wanted} runners")
        await asyncio.sleep(1.0)  # let the message loop settle (more decisions, same count)
        calls = Counter(runtime.api_calls)
        calls.subtract(calls_before)
        decisions = registry.decisions - decisions_before
    lookups = describe_or_list(calls)
    return {
        "decisions": decisions,
        "describe_list_calls": lookups,
        "describe_list_per_decision": round(lookups / max(decisions, 1), 3),
        "cloud_calls": {op: n for op, n in sorted(calls.items()) if n},
    }


async def run(*, jobs: int = 100, seed: int = 1) -> dict[str, Any]:
    """Both runtimes, both modes; the simulator without latency (counts only)."""
    results: dict[str, Any] = {"parameters": {"jobs": jobs, "seed": seed}}
    aws.default_to_dummy_credentials()
    with (
        aws.moto_server(serialized=False) as endpoint,
        SimulatorProcess(PAT, long_poll_seconds=5.0, seed=seed) as sim,
    ):
        for kind in ("ec2", "ecs"):
            modes = {}
            for mode in ("registry", "describe_every_decision"):
                fixtures = await asyncio.to_thread(aws_fixtures, endpoint)
                runtime = build_runtime(kind, endpoint, fixtures)
                registry = (
                    CountingRegistry() if mode == "registry" else DescribeEveryDecision(runtime)
                )
                modes[mode] = await _burst(sim, runtime, registry, f"{kind}-{mode[:8]}", jobs)
            base = modes["describe_every_decision"]["describe_list_calls"]
            ours = modes["registry"]["describe_list_calls"]
            modes["reduction_percent"] = round(100 * (1 - ours / base), 1) if base else 0.0
            results[kind] = modes
    return results
