"""Fixtures of the runtime tests: AWS networks and templates in moto, recorded backoff sleeps,
and pacing on virtual time (the documented AWS rate limits, without waiting for them)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from gha_scalesets.listener.config import AwsConfig, Ec2RuntimeConfig
from gha_scalesets.listener.runtimes._pacing import ApiLimit, Pacer
from gha_scalesets.listener.runtimes.aws_limits import ec2_limits
from gha_scalesets.listener.runtimes.ec2 import Ec2Runtime
from gha_scalesets.scaleset.retry import RetryPolicy
from tests.runtimes._faults import FaultProxy


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


@dataclass
class VirtualTime:
    """A clock that only moves when paced code sleeps on it (each sleep is recorded)."""

    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def pacer(self, limits: dict[str, ApiLimit]) -> Pacer:
        return Pacer(limits, clock=self.clock, sleep=self.sleep)


@pytest.fixture
def virtual_time() -> VirtualTime:
    return VirtualTime()


@dataclass
class Network:
    """Where runners go in moto, and the queue their state events arrive in."""

    vpc_id: str
    subnet_ids: list[str]
    security_group_id: str
    queue_url: str


@pytest.fixture
def network(boto_client: Any) -> Network:
    """A VPC with two subnets in two zones, a security group and the state-events queue."""
    ec2 = boto_client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    # ECS tasks in moto need DNS hostnames on the VPC (it names their ENIs).
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)[
            "Subnet"
        ]["SubnetId"]
        for i, zone in enumerate(["us-east-1a", "us-east-1b"])
    ]
    group = ec2.create_security_group(GroupName="runners", Description="runners", VpcId=vpc_id)[
        "GroupId"
    ]
    queue_url = boto_client("sqs").create_queue(QueueName="runner-state-events")["QueueUrl"]
    return Network(vpc_id, subnets, group, queue_url)


@pytest.fixture
def template_id(boto_client: Any) -> str:
    """A runner launch template (moto accepts any AMI id)."""
    return boto_client("ec2").create_launch_template(
        LaunchTemplateName="runner",
        LaunchTemplateData={"ImageId": "ami-12345678", "InstanceType": "t3.micro"},
    )["LaunchTemplate"]["LaunchTemplateId"]


@pytest.fixture
async def make_ec2_runtime(
    network: Network, template_id: str, aws: str, backoffs: Backoffs, virtual_time: VirtualTime
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
            pacer=virtual_time.pacer(ec2_limits() if paced else {}),
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
