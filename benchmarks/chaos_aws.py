"""AWS for the chaos scenarios: moto's server, a fault-injecting proxy in front of it, fixtures.

:class:`AwsFaultProxy` answers a seeded share of chosen operations with the error AWS sends
(see :mod:`benchmarks.aws_error_proxy`), so the SDK's own retry mode (DynamoDB's throttling
retries) takes part.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
from botocore.client import BaseClient
from botocore.config import Config

from benchmarks.aws_error_proxy import AwsError, AwsErrorProxy

REGION = "us-east-1"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


@dataclass(frozen=True)
class AwsFault:
    """Answer ``rate`` of the ``operation`` requests (e.g. ``PutItem``) whose parameters hold
    ``when`` (name, value pairs, e.g. spot launches only) with ``code``."""

    operation: str
    code: str
    status: int = 400
    rate: float = 1.0
    when: tuple[tuple[str, str], ...] = ()


class AwsFaultProxy(AwsErrorProxy):
    """The error proxy failing a seeded share of each fault's operation; ``injected`` counts
    the errors sent, by code."""

    def __init__(self, upstream: str, faults: list[AwsFault], seed: int = 0) -> None:
        self.faults = faults
        self.injected: Counter[str] = Counter()
        self._rng = random.Random(seed)
        super().__init__(upstream, self._choose)

    def _choose(self, operation: str, params: Mapping[str, Any]) -> AwsError | None:
        for fault in self.faults:
            if (
                fault.operation == operation
                and all(params.get(k) == v for k, v in fault.when)
                and self._rng.random() < fault.rate
            ):
                self.injected[fault.code] += 1
                return AwsError(fault.code, fault.status)
        return None


def client(service: str, endpoint: str) -> BaseClient:
    """A boto3 client on ``endpoint`` (moto or the proxy) with SDK retries off."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        config=Config(retries={"max_attempts": 1}),
    )


@dataclass(frozen=True)
class Ec2Setup:
    launch_template_id: str
    subnet_ids: list[str]


def create_network(endpoint: str) -> tuple[str, list[str]]:
    """A VPC with DNS hostnames (ECS needs them) and two subnets in two zones."""
    ec2 = client("ec2", endpoint)
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)[
            "Subnet"
        ]["SubnetId"]
        for i, zone in enumerate(["us-east-1a", "us-east-1b"])
    ]
    return vpc_id, subnets


def create_ec2(endpoint: str) -> Ec2Setup:
    _, subnets = create_network(endpoint)
    template = client("ec2", endpoint).create_launch_template(
        LaunchTemplateName="chaos-runner",
        LaunchTemplateData={"ImageId": "ami-12345678", "InstanceType": "t3.micro"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    return Ec2Setup(template, subnets)


def create_ecs(endpoint: str) -> tuple[str, list[str]]:
    """A cluster with a Fargate runner task definition; returns (cluster, subnets)."""
    _, subnets = create_network(endpoint)
    # moto advances a task's status on every DescribeTasks unless pinned.
    httpx.post(
        f"{endpoint}/moto-api/state-manager/set-transition",
        json={"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}},
    ).raise_for_status()
    ecs = client("ecs", endpoint)
    ecs.create_cluster(clusterName="chaos")
    ecs.register_task_definition(
        family="runner",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="1024",
        memory="2048",
        containerDefinitions=[{"name": "runner", "image": "runner:latest", "memory": 2048}],
    )
    return "chaos", subnets


def jit_parameters(endpoint: str, prefix: str) -> int:
    """JIT configs still stored in SSM under ``prefix`` (each one a leaked secret if idle)."""
    ssm = client("ssm", endpoint)
    pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=prefix, Recursive=True)
    return sum(len(page["Parameters"]) for page in pages)


_DYNAMODB_LOCK = threading.Lock()


def serialise_dynamodb() -> None:
    """Serve moto's DynamoDB requests one at a time (moto running in this process).

    For ``python -m benchmarks.chaos``; the test suite's moto fixture serialises every request.

    ``ThreadedMotoServer`` handles requests concurrently, and moto rolls a cancelled
    TransactWriteItems back by restoring a copy of the whole table taken before it: writes
    that other requests made (and were acknowledged) in between are silently undone. The
    registry's conditional reservations are cancelled often at max, so a burst could lose a
    release or an update (a job lost, a registry entry left) that real DynamoDB never loses.
    """
    from moto.dynamodb.responses import DynamoHandler

    call_action = DynamoHandler.call_action
    if getattr(call_action, "serialised", False):
        return

    def serialised(self: DynamoHandler) -> Any:
        with _DYNAMODB_LOCK:
            return call_action(self)

    serialised.serialised = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = serialised  # type: ignore[method-assign]


def reset(endpoint: str) -> None:
    httpx.post(f"{endpoint}/moto-api/reset").raise_for_status()


def env() -> dict[str, Any]:
    """Environment variables an SDK client or a listener process needs to reach moto."""
    return dict(DUMMY_CREDENTIALS)
