"""Inputs the component tests declare, and small readers of what the mocks recorded."""

from __future__ import annotations

import base64
import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from gha_scalesets.components import (
    Ec2Options,
    EcsOptions,
    K8sOptions,
    ListenerScaleSet,
    ScaleSetListenerArgs,
)
from gha_scalesets.providers import ScaleSet, ScaleSetArgs
from tests.support.pulumi_mocks import SCALE_SET_TYPE

TOKEN = "ghp_TOPSECRETTOKENVALUE0123456789"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ci-alerts"
RUNNER_AMI = "ami-0123456789abcdef0"
ECS_RUNNER_IMAGE = "ghcr.io/acme/gha-scalesets-runner:0.1.0"
SUBNETS = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"]
OUTPUTS = (
    "listener_id",
    "secret_name",
    "secret_arn",
    "kms_key_arn",
    "table_name",
    "queue_url",
    "dead_letter_queue_url",
    "runner_template",
    "alarm_arns",
    "alert_rules_config_map",
)


def scale_sets() -> list[ListenerScaleSet]:
    """Two real ``providers.ScaleSet`` resources with their bounds."""
    return [
        ListenerScaleSet(
            ScaleSet(
                f"ss-{name}",
                ScaleSetArgs(
                    github_config_url="https://github.com/acme", name=name, github_token=TOKEN
                ),
            ),
            min_runners=low,
            max_runners=high,
        )
        for name, low, high in (("linux-x64", 0, 20), ("gpu", 1, 4))
    ]


def listener_args(runtime: str, **overrides: Any) -> ScaleSetListenerArgs:
    """Complete, valid inputs for ``runtime`` (k8s gets a provider), with ``overrides``."""
    values: dict[str, Any] = {
        "runtime": runtime,
        "github_config_url": "https://github.com/acme",
        "github_token": pulumi.Output.secret(TOKEN),
        "scale_sets": scale_sets(),
        "listener_image": "ghcr.io/acme/gha-scalesets-listener:1.0",
        "alarm_actions": [TOPIC],
    }
    if runtime == "k8s":
        if "k8s" not in overrides:  # a provider is a resource: declare it only when used
            values["k8s"] = K8sOptions(namespace="ci-runners", provider=k8s.Provider("cluster"))
    else:
        values |= {
            "vpc_id": "vpc-0123456789abcdef0",
            "subnet_ids": SUBNETS,
            "ec2": Ec2Options(runner_ami_id=RUNNER_AMI),
            "ecs": EcsOptions(runner_image=ECS_RUNNER_IMAGE),
        }
    return ScaleSetListenerArgs(**(values | overrides))


def policy(registered_inputs: dict[str, Any]) -> dict[str, Any]:
    """The policy document of a registered RolePolicy / QueuePolicy."""
    return json.loads(registered_inputs["policy"])


def statements_by_sid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in document["Statement"]}


def assert_publishes_what_the_alarms_read(settings: Any, recorder: Any) -> None:
    """The listener's ``cloudwatch`` settings name the namespace and dimension of its alarms."""
    published = settings.cloudwatch
    assert published is not None, "an AWS listener must publish its alarm metrics"
    assert (published.namespace, published.listener_name) == ("GHAScaleSets", "dev.ci")
    assert published.interval_seconds == 60  # the alarms' shortest period
    read = [
        metric
        for alarm in recorder.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        for metric in [
            alarm.inputs,
            *(q.get("metric") or {} for q in alarm.inputs.get("metricQueries", [])),
        ]
        if metric.get("namespace") == published.namespace
    ]
    spot = {"SpotFallbacks"} if settings.runtime == "ec2" and settings.ec2.spot else set()
    assert {m["metricName"] for m in read} == {
        "Heartbeat",
        "ApiRequests",
        "ApiErrors",
        "JobsWaiting",
        "RunnerLaunchFailures",
        "ActiveScaleSets",
        "IdleRunnerMinutes",
        "IdleBudgetMinutes",
        "CredentialBudgetMinPercent",
        "HttpPoolWaitSeconds",
    } | spot
    assert all(m["dimensions"] == {"Listener": published.listener_name} for m in read)


LT = "aws:ec2/launchTemplate:LaunchTemplate"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
# What a listener declares on AWS whatever its platform (EC2 or ECS adds its own).
AWS_LISTENER_TYPES = {
    "aws:cloudwatch/eventRule:EventRule",
    "aws:cloudwatch/eventTarget:EventTarget",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:dynamodb/table:Table",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:iam/role:Role",
    ROLE_POLICY,
    "aws:kms/key:Key",
    "aws:secretsmanager/secret:Secret",
    "aws:secretsmanager/secretVersion:SecretVersion",
    "aws:sqs/queue:Queue",
    "aws:sqs/queuePolicy:QueuePolicy",
    "gha-scalesets:index:ScaleSetListener",
    SCALE_SET_TYPE,
}


def user_data(template: Any) -> str:
    """The decoded boot script of a recorded launch template."""
    return base64.b64decode(template.inputs["userData"]).decode()


def env_file(script: str) -> dict[str, str]:
    """The listener's environment file a boot script writes."""
    body = script.split("<<'GHA_SCALESETS_ENV'\n", 1)[1].split("\nGHA_SCALESETS_ENV\n", 1)[0]
    return dict(line.split("=", 1) for line in body.splitlines())


def containers(recorder: Any, name: str) -> list[dict[str, Any]]:
    """The container definitions of the recorded ECS task definition ``name``."""
    return json.loads(recorder.one(TASK_DEFINITION, name).inputs["containerDefinitions"])
