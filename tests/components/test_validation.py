"""Bad inputs stop the program before anything is declared, with messages that say what to fix."""

from __future__ import annotations

import json
import types
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from gha_scalesets.components import (
    AlarmThresholds,
    Ec2Options,
    EcsOptions,
    K8sOptions,
    ListenerConfigError,
    ListenerScaleSet,
    PacingOptions,
    ScaleSetListener,
)
from gha_scalesets.components.listener import TYPE
from gha_scalesets.components.validation import has_provider
from gha_scalesets.providers import GitHubAppArgs, ScaleSet, ScaleSetArgs
from tests.support.components import listener_args
from tests.support.pulumi_mocks import run


def _scale_set(resource_name: str, name: str) -> ScaleSet:
    return ScaleSet(
        resource_name,
        ScaleSetArgs(github_config_url="https://github.com/acme", name=name, github_token="t"),
    )


def _fail(recorder, name: str = "ci", *, runtime: str = "ecs", **overrides: Any) -> str:
    def build() -> dict[str, Any]:
        resolved = {k: v() if callable(v) else v for k, v in overrides.items()}
        listener = ScaleSetListener(name, listener_args(runtime, **resolved))
        return {"id": listener.listener_id}

    with pytest.raises(ListenerConfigError) as caught:
        run(build)
    assert recorder.of_type(TYPE) == []  # nothing of the listener was declared
    return str(caught.value)


def test_every_problem_is_reported_at_once(recorder) -> None:
    message = _fail(
        recorder,
        "ci runners!",
        runtime="ec2",
        subnet_ids=[],
        vpc_id=None,
        github_token=None,
        ec2=Ec2Options(runner_ami_id="ami-1", runner_volume_gb=4),
        ecs=EcsOptions(runner_cpu=3000),  # not the runtime's: not checked
    )

    assert message.splitlines() == [
        "invalid ScaleSetListener 'ci runners!':",
        "  - name: 'ci runners!' must be 1-63 letters, digits, '.', '_' or '-', starting with a"
        " letter or digit (it becomes part of AWS and Kubernetes names)",
        "  - github_token: a credential is required: github_token (a PAT with admin:org, repo or"
        " manage_runners:enterprise) or github_app (an App installation)",
        "  - vpc_id: required on runtime 'ec2': the VPC of the subnets",
        "  - subnet_ids: required on runtime 'ec2': private subnets with a route to GitHub and"
        " AWS APIs (NAT gateway or VPC endpoints)",
        "  - ec2.runner_ami_id: 'ami-1' is not an AMI id (ami-0123456789abcdef0 or"
        " resolve:ssm:...)",
        "  - ec2.runner_volume_gb: 4 must be an integer from 8 to 16384 (GiB of gp3)",
    ]


@pytest.mark.parametrize(
    ("runtime", "overrides", "line"),
    [
        (
            "k8s",
            {"k8s": lambda: K8sOptions(namespace="Bad_NS!", provider=k8s.Provider("c"))},
            "k8s.namespace: 'Bad_NS!' is not a Kubernetes namespace name",
        ),
        (
            "ecs",
            {"ecs": EcsOptions(runner_image="ghcr.io/acme/runner:1", listener_memory=4096)},
            "ecs.listener_memory: 4096 MiB does not go with 256 CPU units on Fargate: use 512 to"
            " 2048 in steps of 512",
        ),
        (
            "ecs",
            {"alarm_actions": ["ci-alerts"]},
            "alarm_actions[0]: 'ci-alerts' is not an ARN",
        ),
        ("ecs", {"vpc_id": "vpc-1"}, "vpc_id: 'vpc-1' is not a VPC id (vpc-0123456789abcdef0)"),
        (
            "ecs",
            {"github_credentials": ["t1", "t2"]},
            "github_credentials: give either github_credentials or github_token / github_app,"
            " not both",
        ),
        (
            "ecs",
            {"github_token": None, "github_credentials": ["t", None]},
            "github_credentials[1]: a credential is required",
        ),
        (
            "ecs",
            {
                "github_token": None,
                "github_credentials": [
                    GitHubAppArgs(client_id="", installation_id=2, private_key="k")
                ],
            },
            "github_credentials[0]: ",
        ),
        ("k8s", {"pacing": PacingOptions(jit_per_minute=0)}, "pacing.jit_per_minute: 0 must be"),
        (
            "ecs",
            {"alarm_thresholds": AlarmThresholds(credential_budget_percent=150)},
            "alarm_thresholds.credential_budget_percent: 150 must be from 0 to 100",
        ),
        ("ecs", {"listener_image": "https://ghcr.io/acme/x"}, "listener_image: 'https://"),
    ],
)
def test_platform_rules(recorder, runtime: str, overrides: dict[str, Any], line: str) -> None:
    assert f"  - {line}" in _fail(recorder, runtime=runtime, **overrides)


def test_a_kubernetes_listener_needs_a_name_kubernetes_takes(recorder) -> None:
    assert "  - name: 'CI' must be a Kubernetes name on runtime 'k8s'" in _fail(
        recorder, "CI", runtime="k8s"
    )


def test_outputs_are_left_to_the_resources_that_take_them(recorder) -> None:
    """Values known only later (other resources' outputs) pass the declaration-time rules."""

    def build() -> dict[str, Any]:
        later = pulumi.Output.from_input("not-a-vpc")
        args = listener_args(
            "ecs",
            vpc_id=later,
            subnet_ids=[later],
            alarm_actions=[later],
            kms_key_arn=later,
            github_config_url=later,
        )
        return {"id": ScaleSetListener("ci", args).listener_id}

    assert run(build)["id"]


def test_the_same_scale_set_twice_is_refused(recorder) -> None:
    def twice() -> list[ScaleSet]:
        shared = _scale_set("ss-one", "one")
        return [shared, ListenerScaleSet(shared, 0, 3)]

    assert _fail(recorder, scale_sets=twice).splitlines()[1:] == [
        "  - scale_sets[1]: the same scale set as scale_sets[0] (scale set 'ss-one'): list it once"
    ]


def test_duplicate_scale_set_names_fail_when_declared(recorder) -> None:
    same = lambda: [_scale_set("ss-a", "linux"), _scale_set("ss-b", "linux")]  # noqa: E731
    assert "  - scale_sets[1].name: 'linux' is also the name of scale_sets[0]: scale set names" in (
        _fail(recorder, scale_sets=same)
    )


def test_duplicate_scale_set_names_fail_once_names_known_later_resolve(recorder) -> None:
    def build() -> dict[str, Any]:
        same = [StandIn("linux", 1), StandIn("linux", 2)]
        return {"id": ScaleSetListener("ci", listener_args("ecs", scale_sets=same)).listener_id}

    with pytest.raises(ListenerConfigError, match="names must be unique within a listener: linux"):
        run(build)


class StandIn(pulumi.ComponentResource):
    """Anything with ``scale_set_id`` and ``name`` outputs serves as a scale set."""

    def __init__(self, name: str, scale_set_id: int) -> None:
        super().__init__("test:index:StandIn", name)
        self.scale_set_id = pulumi.Output.from_input(scale_set_id)
        self.name = pulumi.Output.from_input(name)


def test_scale_sets_are_typed_loosely(recorder, settings_from_env) -> None:
    def build() -> dict[str, Any]:
        args = listener_args(
            "ecs", scale_sets=[StandIn("one", 7), ListenerScaleSet(StandIn("two", 8), 2, 3)]
        )
        return {"id": ScaleSetListener("ci", args).listener_id}

    run(build)

    task = recorder.one("aws:ecs/taskDefinition:TaskDefinition", "ci-listener")
    (container,) = json.loads(task.inputs["containerDefinitions"])
    settings = settings_from_env({e["name"]: e["value"] for e in container["environment"]})
    assert [
        (s.scale_set_id, s.name, s.min_runners, s.max_runners) for s in settings.scale_sets
    ] == [
        (7, "one", 0, 10),
        (8, "two", 2, 3),
    ]


@pytest.mark.parametrize("mapping", [dict, types.MappingProxyType], ids=["dict", "mapping"])
def test_providers_given_as_any_mapping_are_found_by_package(mapping) -> None:
    opts = pulumi.ResourceOptions(providers=mapping({"kubernetes": object()}))
    assert has_provider(opts, "kubernetes")
    assert not has_provider(opts, "aws")
