"""AWS for the chaos scenarios: moto's server, a fault-injecting proxy in front of it, fixtures.

moto never throttles and always has capacity. :class:`AwsFaultProxy` forwards every request to
moto except a seeded share of chosen operations, which it answers with the error AWS sends
(the JSON protocols' ``__type`` body, EC2's query-protocol XML). The SDK therefore parses real
error responses over HTTP and its own retry mode (DynamoDB's throttling retries) takes part.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import boto3
import httpx
from botocore.client import BaseClient
from botocore.config import Config

REGION = "us-east-1"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


@dataclass(frozen=True)
class AwsFault:
    """Answer ``rate`` of the ``operation`` requests (e.g. ``PutItem``) with ``code``."""

    operation: str
    code: str
    status: int = 400
    rate: float = 1.0


def _query_error(code: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
        f"<Code>{code}</Code><Message>injected {code}</Message></Error></Errors>"
        "<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
    ).encode()


class AwsFaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of ``upstream``; ``injected`` counts faults by code."""

    def __init__(self, upstream: str, faults: list[AwsFault], seed: int = 0) -> None:
        self.faults = faults
        self.injected: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._http = httpx.Client(base_url=upstream, timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                proxy._handle(self)

            def log_message(self, *_: object) -> None:
                pass  # the request log would be noise

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _fault(self, operation: str) -> AwsFault | None:
        with self._lock:
            for fault in self.faults:
                if fault.operation == operation and self._rng.random() < fault.rate:
                    self.injected[fault.code] += 1
                    return fault
        return None

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length", 0)))
        target = request.headers.get("X-Amz-Target")
        # JSON protocols name the operation in a header, the query protocol (EC2) in the body.
        operation = (
            target.rsplit(".", 1)[-1] if target else dict(parse_qsl(body.decode())).get("Action")
        )
        fault = self._fault(operation or "")
        if fault is not None:
            if target:
                payload = json.dumps({"__type": fault.code, "message": f"injected {fault.code}"})
                self._reply(request, fault.status, payload.encode(), "application/x-amz-json-1.0")
            else:
                self._reply(request, fault.status, _query_error(fault.code), "text/xml")
            return
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in {"host", "content-length"}
        }
        upstream = self._http.post(request.path, content=body, headers=headers)
        content_type = upstream.headers.get("content-type", "")
        self._reply(request, upstream.status_code, upstream.content, content_type)

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str) -> None:
        request.send_response(status)
        request.send_header("Content-Type", ctype)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    @contextmanager
    def running(self) -> Iterator[AwsFaultProxy]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            self._http.close()
            thread.join()


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
