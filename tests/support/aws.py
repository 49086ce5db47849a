"""AWS on this machine: moto's server mode on 127.0.0.1, SDK clients on it, and the network,
launch template and ECS cluster that runners need (the runtime tests and the AWS benchmarks build
the same ones)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
from botocore.client import BaseClient
from botocore.config import Config
from moto.server import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    ThreadedMotoServer,
    create_backend_app,
)
from werkzeug.serving import make_server

REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b")
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
CLUSTER = "runners"
TASK_DEFINITION = "runner"


class SerializedMotoServer(ThreadedMotoServer):
    """moto's server mode, one request at a time.

    moto's backends are not thread-safe: concurrent requests (a burst of RunInstances, DynamoDB
    transactions) corrupt its state ("pop from an empty set", lost updates), which real AWS never
    does. SQS long polls stay concurrent: they mostly wait, and serialising them would stall
    every other call for the whole wait.
    """

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        lock = threading.Lock()

        def serialized(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            if "ReceiveMessage" in environ.get("HTTP_X_AMZ_TARGET", ""):
                return app(environ, start_response)
            with lock:
                return list(app(environ, start_response))

        self._server = make_server(
            self._ip_address, self._port, serialized, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


@contextlib.contextmanager
def moto_server(*, serialized: bool = True) -> Iterator[str]:
    """moto in server mode on 127.0.0.1 (its URL); ``serialized=False`` serves requests
    concurrently, as moto itself does."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server_class = SerializedMotoServer if serialized else ThreadedMotoServer
    server = server_class(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def default_to_dummy_credentials() -> None:
    """Dummy credentials in this process's environment where none are set (for a benchmark run:
    a test sets them per test)."""
    for key, value in DUMMY_CREDENTIALS.items():
        os.environ.setdefault(key, value)


def reset(endpoint: str) -> None:
    """Forget every resource moto holds."""
    httpx.post(f"{endpoint}/moto-api/reset").raise_for_status()


def client(service: str, endpoint: str) -> BaseClient:
    """A boto3 client on ``endpoint`` (moto or a proxy in front of it) with SDK retries off."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


@dataclass(frozen=True)
class Network:
    """Where runners go: a VPC with a subnet per zone and a security group."""

    vpc_id: str
    subnet_ids: list[str]
    security_group_id: str


def create_network(endpoint: str) -> Network:
    """A VPC with DNS hostnames (moto names ECS tasks' ENIs by them), a /20 subnet in each of two
    zones (room for a burst of 500 instances) and a security group for the runners."""
    ec2 = client("ec2", endpoint)
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{16 * i}.0/20", AvailabilityZone=zone)[
            "Subnet"
        ]["SubnetId"]
        for i, zone in enumerate(ZONES)
    ]
    group = ec2.create_security_group(GroupName="runners", Description="runners", VpcId=vpc_id)
    return Network(vpc_id, subnets, group["GroupId"])


def create_launch_template(endpoint: str, name: str = "runner") -> str:
    """A runner launch template (moto accepts any AMI id); its id."""
    return client("ec2", endpoint).create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={"ImageId": "ami-12345678", "InstanceType": "t3.micro"},
    )["LaunchTemplate"]["LaunchTemplateId"]


def create_ecs_cluster(endpoint: str, cluster: str = CLUSTER, *, pin_tasks: bool = True) -> str:
    """A cluster with a Fargate runner task definition (``TASK_DEFINITION``); with
    ``pin_tasks``, tasks keep their status until an event says otherwise. The cluster's name."""
    if pin_tasks:  # moto advances a task's status on every DescribeTasks otherwise
        httpx.post(
            f"{endpoint}/moto-api/state-manager/set-transition",
            json={
                "model_name": "ecs::task",
                "transition": {"progression": "manual", "times": 10**9},
            },
        ).raise_for_status()
    ecs = client("ecs", endpoint)
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family=TASK_DEFINITION,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="1024",
        memory="2048",
        # moto needs memory on the container to run the task.
        containerDefinitions=[{"name": "runner", "image": "runner:latest", "memory": 2048}],
    )
    return cluster


def create_queue(endpoint: str, name: str = "runner-state-events") -> str:
    """The SQS queue the EventBridge rule feeds runner state events into; its URL."""
    return client("sqs", endpoint).create_queue(QueueName=name)["QueueUrl"]


def registry_table(endpoint: str, prefix: str) -> tuple[str, Any]:
    """A fresh registry table on moto: its name and a DynamoDB client for it."""
    from gha_scalesets.listener.config import AwsConfig, DynamoDBRegistryConfig
    from gha_scalesets.listener.registry.dynamodb import create_table, make_dynamodb_client

    config = DynamoDBRegistryConfig(
        table_name=f"{prefix}-{uuid.uuid4().hex[:8]}", region=REGION, endpoint_url=endpoint
    )
    client = make_dynamodb_client(config, AwsConfig())
    create_table(client, config.table_name)
    return config.table_name, client
