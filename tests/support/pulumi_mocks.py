"""A ``pulumi.runtime.Mocks`` that records every registration and answers like the providers.

No provider logic runs under mocks, so every output the component reads back (ARNs, names, queue
URLs, scale set ids) is computed here the way AWS / Kubernetes / the ScaleSet provider would.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import mocks

from gha_scalesets.providers.props import plain

ACCOUNT = "123456789012"
REGION = "eu-west-1"
SCALE_SET_TYPE = "pulumi-python:dynamic/github:ScaleSet"


@dataclass(frozen=True)
class Registered:
    typ: str
    name: str
    id: str
    inputs: dict[str, Any]  # wire names, secrets still wrapped
    state: dict[str, Any]
    urn: str
    parent: str  # URN ("" for none)
    provider: str  # provider reference ("" for the default provider)

    @property
    def plain(self) -> dict[str, Any]:
        return plain(self.inputs)


def _arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


def _aws_outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    physical = inputs.get("name") or f"{name}-1a2b3c"
    service = typ.split(":")[1].split("/")[0]
    outputs: dict[str, Any] = {"name": physical, "arn": _arn(service, f"{name}/{physical}")}
    match typ:
        case "aws:kms/key:Key":
            outputs["arn"] = _arn("kms", f"key/{name}-0000-1111")
        case "aws:sqs/queue:Queue":
            outputs["url"] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{physical}"
            outputs["arn"] = _arn("sqs", physical)
        case "aws:dynamodb/table:Table":
            outputs["arn"] = _arn("dynamodb", f"table/{physical}")
        case "aws:cloudwatch/logGroup:LogGroup":
            outputs["arn"] = _arn("logs", f"log-group:{physical}")
        case "aws:ec2/launchTemplate:LaunchTemplate":
            outputs["latestVersion"] = 3
        case "aws:ecs/cluster:Cluster":
            outputs["arn"] = _arn("ecs", f"cluster/{physical}")
        case "aws:ecs/taskDefinition:TaskDefinition":
            outputs["arn"] = _arn("ecs", f"task-definition/{inputs['family']}:4")
        case "aws:iam/role:Role":
            outputs["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{physical}"
    return outputs


class _ParentMonitor(mocks.MockMonitor):
    """The SDK's mock monitor, also noting each registration's own and parent URN."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(recorder)
        self._recorder = recorder

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method name
        with self._recorder.lock:
            urn = self.make_urn(request.parent, request.type, request.name)
            self._recorder.urns[(request.type, request.name)] = (urn, request.parent)
        return super().RegisterResource(request)


class Recorder(pulumi.runtime.Mocks):
    """Records registrations (thread-safe: the SDK calls from executor threads)."""

    def __init__(self) -> None:
        self.resources: list[Registered] = []
        self.calls: list[str] = []
        self.urns: dict[tuple[str, str], tuple[str, str]] = {}  # (type, name) -> (urn, parent)
        self.lock = threading.Lock()
        self._ids = itertools.count(1)

    def install(self, stack: str = "dev", project: str = "gha-scalesets") -> Recorder:
        """Make this the Pulumi runtime's mocks (a real, not a preview, run)."""
        pulumi.runtime.set_mocks(
            self, project=project, stack=stack, preview=False, monitor=_ParentMonitor(self)
        )
        return self

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        with self.lock:
            number = next(self._ids)
        inputs = dict(args.inputs)
        if args.typ == SCALE_SET_TYPE:
            outputs: dict[str, Any] = {"scale_set_id": 100 + number, "runner_group_name": "Default"}
            resource_id = str(100 + number)
        elif args.typ.startswith("aws:"):
            outputs = _aws_outputs(args.typ, args.name, inputs)
            resource_id = f"{args.name}-id"
            if args.typ == "aws:ec2/securityGroup:SecurityGroup":
                resource_id = f"sg-{args.name}"  # unlike the launch template of the same name
            if args.typ == "aws:ecs/service:Service":
                resource_id = _arn("ecs", f"service/cluster/{args.name}")
        else:
            outputs, resource_id = {}, f"{args.name}-id"
        state = inputs | outputs
        with self.lock:
            urn, parent = self.urns.get((args.typ, args.name), ("", ""))
            self.resources.append(
                Registered(
                    args.typ,
                    args.name,
                    resource_id,
                    inputs,
                    state,
                    urn,
                    parent,
                    args.provider or "",
                )
            )
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        with self.lock:
            self.calls.append(args.token)
        answers = {
            "aws:index/getPartition:getPartition": {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
            },
            "aws:index/getRegion:getRegion": {"region": REGION, "name": REGION},
            "aws:index/getCallerIdentity:getCallerIdentity": {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/ci",
                "userId": "AIDA",
            },
        }
        return answers.get(args.token, {}), []

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name: str | None = None) -> Registered:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {typ} {name or ''}, got {[r.name for r in found]}"
        return found[0]

    def types(self) -> set[str]:
        return {r.typ for r in self.resources}


def run(build: Callable[[], Any]) -> dict[str, Any]:
    """Run ``build`` as a Pulumi program under the mocks and return its resolved value.

    ``build`` returns a dict of Outputs (or a resource); the registrations are complete when
    this returns, so assertions on the recorder see everything.
    """
    result: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        return pulumi.Output.from_input(build()).apply(lambda v: result.update(value=v))

    program()
    return result.get("value", {})
