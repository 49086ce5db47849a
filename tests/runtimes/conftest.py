"""Fixtures of the runtime tests: AWS networks and templates in moto, recorded backoff sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from scaleset.retry import RetryPolicy
from tests.runtimes._faults import FaultProxy


@dataclass
class Backoffs:
    """A seeded retry policy whose sleeps are recorded instead of slept."""

    delays: list[float]
    policy: RetryPolicy


@pytest.fixture
def backoffs() -> Backoffs:
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
class Network:
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
def fault_proxy(aws: str) -> Iterator[FaultProxy]:
    """A proxy in front of moto that injects AWS errors (capacity, throttling, denials)."""
    with FaultProxy(aws).running() as proxy:
        yield proxy
