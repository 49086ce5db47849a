"""AWS for the chaos scenarios: a fault-injecting proxy in front of moto, runtimes' fixtures.

:class:`AwsFaultProxy` answers a seeded share of chosen operations with the error AWS sends
(see :mod:`tests.support.aws_errors`), so the SDK's own retry mode (DynamoDB's throttling
retries) takes part.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.support import aws
from tests.support.aws_errors import AwsError, AwsErrorProxy


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


@dataclass(frozen=True)
class Ec2Setup:
    launch_template_id: str
    subnet_ids: list[str]


def create_ec2(endpoint: str) -> Ec2Setup:
    template = aws.create_launch_template(endpoint, "chaos-runner")
    return Ec2Setup(template, aws.create_network(endpoint).subnet_ids)


def create_ecs(endpoint: str) -> tuple[str, list[str]]:
    """A cluster with a Fargate runner task definition; returns (cluster, subnets)."""
    subnets = aws.create_network(endpoint).subnet_ids
    return aws.create_ecs_cluster(endpoint, "chaos"), subnets


def jit_parameters(endpoint: str, prefix: str) -> int:
    """JIT configs still stored in SSM under ``prefix`` (each one a leaked secret if idle)."""
    ssm = aws.client("ssm", endpoint)
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
