"""Bad inputs stop the program before anything is declared, with messages that say what to fix."""

from __future__ import annotations

import json
from typing import Any

import pulumi
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
from gha_scalesets.providers import GitHubAppArgs, ScaleSet, ScaleSetArgs
from tests.components.builders import listener_args
from tests.components.mocks import run


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


@pytest.mark.parametrize(
    ("runtime", "overrides", "expected"),
    [
        ("lambda", {}, "runtime 'lambda' is not supported: use one of ec2, ecs, k8s"),
        ("k8s", {"k8s": K8sOptions()}, "runtime 'k8s' needs k8s=K8sOptions(namespace=...)"),
        ("k8s", {"k8s": K8sOptions(namespace="ci")}, "runtime 'k8s' needs a Kubernetes provider"),
        ("ecs", {"subnet_ids": []}, "runtime 'ecs' needs subnet_ids"),
        ("ec2", {"subnet_ids": []}, "runtime 'ec2' needs subnet_ids"),
        ("ec2", {"vpc_id": None}, "runtime 'ec2' needs vpc_id"),
        (
            "ec2",
            {"ec2": Ec2Options(runner_ami_id="ami-1", runner_instance_types=())},
            "ec2.runner_instance_types",
        ),
        ("ec2", {"ec2": Ec2Options()}, "runtime 'ec2' needs ec2.runner_ami_id: an AMI with curl"),
        ("ecs", {"ecs": EcsOptions()}, "runtime 'ecs' needs ecs.runner_image: an image with bash"),
        ("ecs", {"log_retention_days": 10}, "log_retention_days 10 is not one CloudWatch"),
        ("ecs", {"listener_image": " "}, "listener_image is required"),
        ("k8s", {"replicas": 0}, "replicas 0 must be an integer from 1 to 5"),
        ("ec2", {"replicas": 6}, "replicas 6 must be an integer from 1 to 5"),
        ("ecs", {"github_token": None}, "give exactly one of github_token or github_app"),
        (
            "ecs",
            {"github_app": GitHubAppArgs(client_id="1", installation_id=2, private_key="k")},
            "give exactly one of github_token or github_app",
        ),
        (
            "ecs",
            {"github_credentials": ["t1", "t2"]},
            "give exactly one of github_token or github_app (or several as github_credentials)",
        ),
        ("ecs", {"github_token": None, "github_credentials": ["t", None]}, "holds a None"),
        ("k8s", {"pacing": PacingOptions(jit_per_minute=0)}, "pacing.jit_per_minute 0 must be"),
        (
            "ecs",
            {"alarm_thresholds": AlarmThresholds(credential_budget_percent=150)},
            "credential_budget_percent 150 is not a percentage",
        ),
        ("ecs", {"scale_sets": []}, "scale_sets is empty"),
        (
            "ecs",
            {"scale_sets": lambda: [ListenerScaleSet(_scale_set("ss-big", "big"), 5, 2)]},
            "scale_sets[0] ('ss-big'): min_runners (5) is above max_runners (2)",
        ),
    ],
)
def test_bad_input_fails_with_a_clear_message(recorder, runtime, overrides, expected) -> None:
    assert expected in _fail(recorder, runtime=runtime, **overrides)


def test_every_problem_is_reported_at_once(recorder) -> None:
    message = _fail(recorder, runtime="ec2", subnet_ids=[], vpc_id=None, github_token=None)

    assert message.startswith("invalid ScaleSetListener 'ci':")
    for part in ("needs vpc_id", "needs subnet_ids", "exactly one of github_token"):
        assert part in message


def test_a_name_unfit_for_aws_and_kubernetes_names_is_refused(recorder) -> None:
    assert "the listener's name 'ci runners!' must be" in _fail(recorder, "ci runners!")


def test_the_same_scale_set_twice_is_refused(recorder) -> None:
    def twice() -> list[ScaleSet]:
        shared = _scale_set("ss-one", "one")
        return [shared, ListenerScaleSet(shared, 0, 3)]

    assert "scale_sets[1] ('ss-one') is the same scale set as scale_sets[0]" in _fail(
        recorder, scale_sets=twice
    )


def test_duplicate_scale_set_names_fail_once_the_names_are_known(recorder) -> None:
    def build() -> dict[str, Any]:
        same = [_scale_set("ss-a", "linux"), _scale_set("ss-b", "linux")]
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
