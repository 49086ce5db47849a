"""Fixtures of the runtime tests: each runtime on its local cloud (moto, the fake Kubernetes API
server), recorded backoff sleeps, and pacing on virtual time (the documented AWS rate limits,
without waiting for them)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from gha_scalesets.listener.config import (
    AwsConfig,
    Ec2RuntimeConfig,
    EcsRuntimeConfig,
    K8sRuntimeConfig,
)
from gha_scalesets.listener.runtimes.aws_limits import ec2_limits, ecs_limits
from gha_scalesets.listener.runtimes.ec2 import Ec2Runtime
from gha_scalesets.listener.runtimes.ecs import EcsRuntime
from gha_scalesets.listener.runtimes.k8s import K8sRuntime
from gha_scalesets.scaleset.retry import RetryPolicy
from tests.support import aws as aws_support
from tests.support.aws_errors import FaultProxy
from tests.support.clocks import FakeClock
from tests.support.runtimes import K8S_NAMESPACE
from tests.support.runtimes import paced as paced_by


@dataclass
class Backoffs:
    """A seeded retry policy whose sleeps are recorded instead of slept."""

    delays: list[float]
    policy: RetryPolicy


@pytest.fixture
def backoffs() -> Backoffs:
    """Full jitter, 0.5 s base, 5 attempts, seed 7; nothing is actually slept."""
    delays: list[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)

    return Backoffs(
        delays,
        RetryPolicy(
            max_attempts=5, backoff_base=0.5, backoff_max=20.0, deadline=None, seed=7, sleep=record
        ),
    )


@pytest.fixture
def virtual_time() -> FakeClock:
    """Time for the pacers: it moves only when they wait."""
    return FakeClock()


@dataclass(frozen=True)
class RunnerNetwork:
    """Where runners go in moto, and the queue their state events arrive in."""

    subnet_ids: list[str]
    security_group_id: str
    queue_url: str


@pytest.fixture
def network(aws: str) -> RunnerNetwork:
    """Two subnets in two zones, a security group and the state-events queue."""
    created = aws_support.create_network(aws)
    return RunnerNetwork(
        created.subnet_ids, created.security_group_id, aws_support.create_queue(aws)
    )


@pytest.fixture
def template_id(aws: str) -> str:
    return aws_support.create_launch_template(aws)


@pytest.fixture
def cluster(aws: str) -> str:
    """A cluster and a Fargate runner task definition; task states only move when told."""
    return aws_support.create_ecs_cluster(aws)


@pytest.fixture
async def make_ec2_runtime(
    network: RunnerNetwork, template_id: str, aws: str, backoffs: Backoffs, virtual_time: FakeClock
) -> AsyncIterator[Callable[..., Ec2Runtime]]:
    """Build Ec2Runtimes on ``network`` (closed after the test), paced by the documented limits
    on ``virtual_time`` (unless not ``paced``); ``overrides`` go to the config."""
    runtimes: list[Ec2Runtime] = []

    def make(
        endpoint: str = aws, clock: Any = time.time, paced: bool = True, **overrides: Any
    ) -> Ec2Runtime:
        settings: dict[str, Any] = {
            "launch_template_id": template_id,
            "instance_types": ["m5.large", "c5.large"],
            "subnet_ids": network.subnet_ids,
            "events_queue_url": network.queue_url,
            "events_wait_seconds": 1,
        }
        config = Ec2RuntimeConfig(**(settings | overrides))
        runtime = Ec2Runtime(
            config,
            AwsConfig(region="us-east-1", endpoint_url=endpoint),
            retry=backoffs.policy,
            clock=clock,
            pacer=paced_by(ec2_limits() if paced else {}, virtual_time),
        )
        runtimes.append(runtime)
        return runtime

    yield make
    for runtime in runtimes:
        await runtime.close()


@pytest.fixture
async def make_ecs_runtime(
    network: Any, cluster: str, aws: str, backoffs: Any, virtual_time: Any
) -> AsyncIterator[Callable[..., EcsRuntime]]:
    """Build EcsRuntimes for ``cluster`` (closed after the test), paced by Fargate's documented
    limits on virtual time; ``overrides`` go to the config."""
    runtimes: list[EcsRuntime] = []

    def make(endpoint: str = aws, clock: Any = time.time, **overrides: Any) -> EcsRuntime:
        settings: dict[str, Any] = {
            "cluster": cluster,
            "task_definition": "runner",
            "subnet_ids": network.subnet_ids,
            "security_group_ids": [network.security_group_id],
            "events_queue_url": network.queue_url,
            "events_wait_seconds": 1,
        }
        runtime = EcsRuntime(
            EcsRuntimeConfig(**(settings | overrides)),
            AwsConfig(region="us-east-1", endpoint_url=endpoint),
            retry=backoffs.policy,
            clock=clock,
            pacer=paced_by(ecs_limits(fargate=True), virtual_time),
        )
        runtimes.append(runtime)
        return runtime

    yield make
    for runtime in runtimes:
        await runtime.close()


@pytest.fixture
async def make_k8s_runtime(k8s_api: Any, backoffs: Any) -> AsyncIterator[Callable[..., K8sRuntime]]:
    """Build K8sRuntimes on the fake API server (closed after the test)."""
    runtimes: list[K8sRuntime] = []

    def make(clock: Any = time.time, **overrides: Any) -> K8sRuntime:
        settings: dict[str, Any] = {
            "namespace": K8S_NAMESPACE,
            "api_url": k8s_api.url,
            "image": "ghcr.io/actions/actions-runner:2.320.0",
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
            "node_selector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "runners", "operator": "Exists", "effect": "NoSchedule"}],
        }
        runtime = K8sRuntime(
            K8sRuntimeConfig(**(settings | overrides)), retry=backoffs.policy, clock=clock
        )
        runtimes.append(runtime)
        return runtime

    yield make
    for runtime in runtimes:
        await runtime.close()


@pytest.fixture
def fault_proxy(aws: str) -> Iterator[FaultProxy]:
    """A proxy in front of moto that injects AWS errors (capacity, throttling, denials)."""
    with FaultProxy(aws).running() as proxy:
        yield proxy
