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
from gha_scalesets.listener.runtimes._pacing import ApiLimit
from gha_scalesets.listener.runtimes.aws_limits import ec2_limits, ecs_limits
from gha_scalesets.listener.runtimes.base import Runtime
from gha_scalesets.listener.runtimes.ec2 import Ec2Runtime
from gha_scalesets.listener.runtimes.ecs import EcsRuntime
from gha_scalesets.listener.runtimes.k8s import K8sRuntime
from gha_scalesets.scaleset.retry import RetryPolicy
from tests.support import aws as aws_support
from tests.support.aws_errors import FaultProxy
from tests.support.clocks import FakeClock
from tests.support.factories import closing_factory
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


async def _close_runtime(runtime: Runtime) -> None:
    await runtime.close()


@pytest.fixture
def on_moto(
    aws: str, network: RunnerNetwork, backoffs: Backoffs, virtual_time: FakeClock
) -> Callable[..., Runtime]:
    """``on_moto(runtime class, config class, settings, limits, endpoint, clock, **overrides)``:
    an AWS runtime on ``network`` reporting to its queue, with recorded backoffs and pacing by
    ``limits`` on virtual time."""

    def build(
        runtime_class: Callable[..., Runtime],
        config_class: Callable[..., Any],
        settings: dict[str, Any],
        limits: dict[str, ApiLimit],
        endpoint: str = aws,
        clock: Any = time.time,
        **overrides: Any,
    ) -> Runtime:
        common = {"events_queue_url": network.queue_url, "events_wait_seconds": 1}
        return runtime_class(
            config_class(**(common | settings | overrides)),
            AwsConfig(region=aws_support.REGION, endpoint_url=endpoint),
            retry=backoffs.policy,
            clock=clock,
            pacer=paced_by(limits, virtual_time),
        )

    return build


@pytest.fixture
async def make_ec2_runtime(
    on_moto: Callable[..., Runtime], network: RunnerNetwork, template_id: str
) -> AsyncIterator[Callable[..., Ec2Runtime]]:
    """Build Ec2Runtimes on ``network`` (closed after the test), paced by the documented limits
    on virtual time (unless not ``paced``); ``overrides`` go to the config."""

    def build(*, paced: bool = True, **overrides: Any) -> Runtime:
        settings = {
            "launch_template_id": template_id,
            "instance_types": ["m5.large", "c5.large"],
            "subnet_ids": network.subnet_ids,
        }
        limits = ec2_limits() if paced else {}
        return on_moto(Ec2Runtime, Ec2RuntimeConfig, settings, limits, **overrides)

    async with closing_factory(build, _close_runtime) as make:
        yield make


@pytest.fixture
async def make_ecs_runtime(
    on_moto: Callable[..., Runtime], network: RunnerNetwork, cluster: str
) -> AsyncIterator[Callable[..., EcsRuntime]]:
    """Build EcsRuntimes for ``cluster`` (closed after the test), paced by Fargate's documented
    limits on virtual time; ``overrides`` go to the config."""

    def build(**overrides: Any) -> Runtime:
        settings = {
            "cluster": cluster,
            "task_definition": aws_support.TASK_DEFINITION,
            "subnet_ids": network.subnet_ids,
            "security_group_ids": [network.security_group_id],
        }
        limits = ecs_limits(fargate=True)
        return on_moto(EcsRuntime, EcsRuntimeConfig, settings, limits, **overrides)

    async with closing_factory(build, _close_runtime) as make:
        yield make


@pytest.fixture
async def make_k8s_runtime(
    k8s_api: Any, backoffs: Backoffs
) -> AsyncIterator[Callable[..., K8sRuntime]]:
    """Build K8sRuntimes on the fake API server (closed after the test)."""

    def build(clock: Any = time.time, **overrides: Any) -> K8sRuntime:
        settings: dict[str, Any] = {
            "namespace": K8S_NAMESPACE,
            "api_url": k8s_api.url,
            "image": "ghcr.io/actions/actions-runner:2.320.0",
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
            "node_selector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "runners", "operator": "Exists", "effect": "NoSchedule"}],
        }
        return K8sRuntime(
            K8sRuntimeConfig(**(settings | overrides)), retry=backoffs.policy, clock=clock
        )

    async with closing_factory(build, _close_runtime) as make:
        yield make


@pytest.fixture
def fault_proxy(aws: str) -> Iterator[FaultProxy]:
    """A proxy in front of moto that injects AWS errors (capacity, throttling, denials)."""
    with FaultProxy(aws).running() as proxy:
        yield proxy
