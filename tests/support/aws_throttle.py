"""A proxy in front of moto that throttles like AWS: the documented token buckets, configurable.

moto never throttles. :class:`ThrottlingProxy` keeps AWS's buckets for one account and Region
(``listener.runtimes.aws_limits``; docs/runtimes.md, "API limits", has the sources): a request
goes through to moto only if every bucket it draws from has the tokens (one per request, or
one per instance/task it starts or stops), and takes them all; otherwise it gets the error AWS
sends (EC2 ``RequestLimitExceeded``, HTTP 503; ECS and SSM ``ThrottlingException``) and takes
nothing. moto handles one request at a time (its backends are not thread-safe).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from gha_scalesets.listener.runtimes import aws_limits
from gha_scalesets.listener.runtimes._pacing import Rate
from tests.support.aws_errors import AwsError, AwsErrorProxy

Cost = Callable[[Mapping[str, Any]], int]


def _one(_params: Mapping[str, Any]) -> int:
    return 1


def _max_count(params: Mapping[str, Any]) -> int:
    return int(params.get("MaxCount", 1))


def _instance_ids(params: Mapping[str, Any]) -> int:
    return sum(1 for key in params if key.startswith("InstanceId."))


def _task_count(params: Mapping[str, Any]) -> int:
    return int(params.get("count", 1))


@dataclass(frozen=True)
class Bucket:
    """One of AWS's buckets: the operations that draw from it and what each costs."""

    name: str
    rate: Rate
    operations: frozenset[str]
    cost: Cost = _one


def documented_buckets(*, fargate: bool = True) -> list[Bucket]:
    """The buckets of the APIs the EC2 and ECS runtimes call, at AWS's default sizes."""
    limits = aws_limits
    buckets = [
        Bucket("ec2:RunInstances requests", limits.EC2_RUN_INSTANCES, frozenset({"RunInstances"})),
        Bucket(
            "ec2:RunInstances instances",
            limits.EC2_RUN_INSTANCES_INSTANCES,
            frozenset({"RunInstances"}),
            _max_count,
        ),
        Bucket(
            "ec2:TerminateInstances requests",
            limits.EC2_TERMINATE_INSTANCES,
            frozenset({"TerminateInstances"}),
        ),
        Bucket(
            "ec2:TerminateInstances instances",
            limits.EC2_TERMINATE_INSTANCES_INSTANCES,
            frozenset({"TerminateInstances"}),
            _instance_ids,
        ),
        Bucket(
            "ecs:cluster resource modify",
            limits.ECS_CLUSTER_RESOURCE_MODIFY,
            frozenset({"RunTask", "StopTask"}),
        ),
        Bucket(
            "ssm:Parameter Store throughput",
            limits.PARAMETER_STORE_STANDARD,
            frozenset({"GetParameter", "GetParameters", "PutParameter"}),
        ),
    ]
    if fargate:
        buckets += [
            Bucket("fargate:RunTask requests", limits.FARGATE_RUN_TASK, frozenset({"RunTask"})),
            Bucket("fargate:tasks", limits.FARGATE_TASKS, frozenset({"RunTask"}), _task_count),
        ]
    return buckets


# The error AWS answers a throttled request with, by operation (EC2's query API vs JSON ones).
_EC2 = frozenset({"RunInstances", "TerminateInstances"})


def throttling_error(operation: str) -> AwsError:
    if operation in _EC2:
        return AwsError("RequestLimitExceeded", 503)
    return AwsError("ThrottlingException", 400)


@dataclass
class _State:
    tokens: float
    updated: float


class ThrottleModel:
    """The buckets' state; ``admit`` decides one request (callers serialise it).
    ``throttled`` and ``admitted`` count requests by operation."""

    def __init__(self, buckets: Iterable[Bucket], clock: Callable[[], float] = time.monotonic):
        self.buckets = list(buckets)
        self.clock = clock
        self.throttled: Counter[str] = Counter()
        self.admitted: Counter[str] = Counter()
        now = clock()
        self._state = {b.name: _State(b.rate.burst, now) for b in self.buckets}

    def admit(self, operation: str, params: Mapping[str, Any]) -> bool:
        now = self.clock()
        drawn = [(b, b.cost(params)) for b in self.buckets if operation in b.operations]
        for bucket, _ in drawn:
            state = self._state[bucket.name]
            elapsed = now - state.updated
            state.tokens = min(bucket.rate.burst, state.tokens + elapsed * bucket.rate.per_second)
            state.updated = now
        # A client that waits exactly for its token must get it (float refill arithmetic).
        if any(self._state[b.name].tokens + 1e-9 < cost for b, cost in drawn):
            self.throttled[operation] += 1
            return False
        for bucket, cost in drawn:
            self._state[bucket.name].tokens -= cost
        self.admitted[operation] += 1
        return True


class ThrottlingProxy(AwsErrorProxy):
    """Forwards to moto at ``upstream`` what ``model`` admits, one request at a time."""

    def __init__(self, upstream: str, model: ThrottleModel) -> None:
        self.model = model
        self._moto = threading.Lock()
        super().__init__(upstream, self._choose)

    def _choose(self, operation: str, params: Mapping[str, Any]) -> AwsError | None:
        if self.model.admit(operation, params):
            return None
        return throttling_error(operation)

    def _forward(self, request: BaseHTTPRequestHandler, body: bytes) -> tuple[int, bytes, str]:
        with self._moto:
            return super()._forward(request, body)
