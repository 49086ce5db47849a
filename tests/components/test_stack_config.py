"""The stack configuration: keys derived from the component's Args, strict, every mistake at once.

The project's program (``__main__.py``) runs under mocks as ``pulumi preview`` would run it;
a bad configuration must stop it before anything is declared, naming each key.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from collections.abc import Iterator, Sequence
from dataclasses import MISSING, dataclass, field
from typing import Any

import pulumi
import pytest

from gha_scalesets.components import EcsOptions, ListenerScaleSet
from gha_scalesets.components.args import ScaleSetListenerArgs
from gha_scalesets.components.config_keys import SCHEMA, SKIPPED, ConfigSchema, UnmappedField
from gha_scalesets.components.listener import TYPE
from gha_scalesets.providers import ScaleSetArgs
from tests.fixtures.docs import doc_section
from tests.support.programs import example_config, refused, run_program
from tests.support.pulumi_mocks import SCALE_SET_TYPE


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        (
            {"alarmTopicARN": "arn:aws:sns:eu-west-1:123456789012:ci-alerts"},
            "alarmTopicARN: unknown key; did you mean alarmTopicArn?",
        ),
        ({"githubtoken": "x"}, "githubtoken: unknown key; did you mean githubToken?"),
        (
            {"ecs": {"runnerImage": "ghcr.io/acme/runner:1", "runnerCPU": 1024}},
            "ecs.runnerCPU: unknown key; did you mean ecs.runnerCpu?",
        ),
        (
            {"scaleSets": [{"name": "linux", "maxRunner": 3}]},
            "scaleSets[0].maxRunner: unknown key; did you mean scaleSets[0].maxRunners?",
        ),
        ({"flavour": "blue"}, "flavour: unknown key"),
    ],
)
def test_an_unknown_key_is_an_error_naming_the_nearest_known_one(changes, line) -> None:
    assert refused("ecs", **changes) == [line]


@pytest.mark.parametrize(
    ("example", "changes", "line"),
    [
        (
            "ecs",
            {"ecs": {"runnerImage": "ghcr.io/acme/runner:1", "runnerCpu": 3000, "runnerMemory": 1}},
            "ecs.runnerCpu: 3000 CPU units is no Fargate size: use one of 256, 512, 1024, 2048,"
            " 4096, 8192, 16384",
        ),
        (
            "ecs",
            {"ecs": {"runnerImage": "ghcr.io/acme/runner:1", "runnerCpu": 1024, "runnerMemory": 1}},
            "ecs.runnerMemory: 1 MiB does not go with 1024 CPU units on Fargate: use 2048 to 8192"
            " in steps of 1024",
        ),
        (
            "k8s",
            {"k8s": {"namespace": "Bad_NS!"}},
            "k8s.namespace: 'Bad_NS!' is not a Kubernetes namespace name: at most 63 lowercase"
            " letters, digits and '-', starting and ending with a letter or digit",
        ),
        (
            "ec2",
            {"ec2": {"runnerAmiId": "ami-0123456789abcdef0", "runnerVolumeGb": 4}},
            "ec2.runnerVolumeGb: 4 must be an integer from 8 to 16384 (GiB of gp3)",
        ),
        (
            "ec2",
            {"ec2": {"runnerAmiId": "ami-0123456789abcdef0", "runnerInstanceTypes": "m7i large"}},
            "ec2.runnerInstanceTypes[0]: 'm7i large' is not an EC2 instance type (e.g. m7i.large)",
        ),
        (
            "ecs",
            {"alarmTopicArn": "ci-alerts"},
            "alarmTopicArn[0]: 'ci-alerts' is not an ARN (an SNS topic:"
            " arn:aws:sns:<region>:<account>:<name>)",
        ),
        (
            "ecs",
            {"scaleSets": [{"name": "linux-x64", "labels": ["linux,x64"]}]},
            "scaleSets[0].labels: label 'linux,x64' must not contain a comma (runners read labels"
            " as a comma list)",
        ),
        (
            "ecs",
            {"scaleSets": [{"name": "n" * 60}]},
            "scaleSets[0].name: 'nnnnnnnnnnnnnnnnnnnn'… is 60 characters long; the limit is 45",
        ),
        (
            "ecs",
            {"githubConfigUrl": "https://github.com/acme/widgets/extra"},
            "githubConfigUrl: invalid config URL 'https://github.com/acme/widgets/extra', should"
            " point to an enterprise (https://HOST/enterprises/<slug>), org (https://HOST/<org>),"
            " or repository (https://HOST/<owner>/<repo>)",
        ),
    ],
)
def test_platform_rules_stop_the_preview_naming_the_key(example, changes, line) -> None:
    assert line in refused(example, **changes)


def test_every_problem_is_reported_at_once_across_config_and_component() -> None:
    lines = refused(
        "ecs",
        vpcId=None,
        listenerName="ci runners!",
        replicas="two",
        alarmTopicARN="arn:aws:sns:eu-west-1:123456789012:x",
        scaleSets=[{"name": "linux", "minRunners": 5, "maxRunners": 2}],
    )

    assert lines == [
        "replicas: Input should be a valid integer, unable to parse string as an integer",
        "alarmTopicARN: unknown key; did you mean alarmTopicArn?",
        "listenerName: 'ci runners!' must be 1-63 letters, digits, '.', '_' or '-', starting"
        " with a letter or digit (it becomes part of AWS and Kubernetes names)",
        "scaleSets[0].minRunners: 5 is above scaleSets[0].maxRunners (2) (scale set"
        " 'scaleset-linux'): lower one or raise the other",
        "vpcId: required on runtime 'ecs': the VPC of the subnets",
    ]


def test_a_value_of_the_wrong_type_is_named_once_not_again_by_its_rules() -> None:
    assert refused("ecs", scaleSets="linux", runtime=["ecs"]) == [
        "runtime: Input should be a valid string",
        "scaleSets[0]: Input should be a valid dictionary or instance of Config_scale_sets__",
    ]


def test_missing_required_keys_and_a_plain_text_secret(rsa_pem: str) -> None:
    lines = refused(
        "ecs",
        plain=["githubAppPrivateKey"],
        listenerImage=None,
        githubToken=None,
        githubApp={"clientId": "Iv1.abc"},
        githubAppPrivateKey=rsa_pem,
    )

    assert lines == [
        "githubAppPrivateKey: stored in plain text: set it with `pulumi config set --secret"
        " githubAppPrivateKey`",
        "listenerImage: required: the listener image (docs/components.md)",
        "githubApp.installationId: required with githubApp",
    ]


def test_replicas_and_every_other_key_reach_the_component(settings_from_env) -> None:
    recorder, _ = run_program(
        "dev",
        example_config(
            "ecs",
            replicas="2",
            alarmThresholds={"jobWaitMinutes": 25},
            tags={"team": "ci"},
            alarmTopicArn=[
                "arn:aws:sns:eu-west-1:123456789012:a",
                "arn:aws:sns:eu-west-1:123456789012:b",
            ],
        ),
    )

    assert recorder.one("aws:ecs/service:Service").inputs["desiredCount"] == 2
    waiting = recorder.one("aws:cloudwatch/metricAlarm:MetricAlarm", "listener-jobs-waiting")
    assert waiting.inputs["evaluationPeriods"] == 25
    assert len(waiting.inputs["alarmActions"]) == 2
    assert recorder.one("aws:dynamodb/table:Table").inputs["tags"]["team"] == "ci"


def test_kubernetes_runner_options_reach_the_runner_pods(settings_from_env) -> None:
    runner = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}
    toleration = {"key": "ci", "operator": "Exists", "effect": "NoSchedule"}
    k8s = {
        "namespace": "ci-runners",
        "runnerResources": runner,
        "nodeSelector": {"kubernetes.io/arch": "amd64"},
        "tolerations": [toleration],
        "runnerServiceAccountToken": True,
        "context": "prod-eu",
    }
    recorder, _ = run_program("dev", example_config("k8s", k8s=k8s, replicas="2"))

    deployment = recorder.one("kubernetes:apps/v1:Deployment")
    assert deployment.inputs["spec"]["replicas"] == 2
    [container] = deployment.inputs["spec"]["template"]["spec"]["containers"]
    settings = settings_from_env({e["name"]: e["value"] for e in container["env"] if "value" in e})
    assert settings.k8s is not None
    assert settings.k8s.resources == runner
    assert settings.k8s.node_selector == {"kubernetes.io/arch": "amd64"}
    assert settings.k8s.tolerations == [toleration]
    assert settings.k8s.automount_service_account_token is True
    assert recorder.one("pulumi:providers:kubernetes").inputs["context"] == "prod-eu"


def test_a_user_program_under_mocks_refuses_a_bad_scale_set(recorder) -> None:
    from gha_scalesets.providers import ScaleSet, ScaleSetInputError
    from tests.support.pulumi_mocks import run

    def build() -> dict[str, Any]:
        args = ScaleSetArgs(
            github_config_url="ftp://github.com/acme",
            name="n" * 60,
            labels=["gpu,large"],
            github_token="ghp_x",
        )
        return {"id": ScaleSet("gpu", args).id}

    with pytest.raises(ScaleSetInputError) as caught:
        run(build)

    assert str(caught.value).splitlines() == [
        "invalid ScaleSet 'gpu':",
        "  - github_config_url: invalid config URL 'ftp://github.com/acme': expected an http(s)"
        " URL such as https://github.com/<org>",
        "  - name: 'nnnnnnnnnnnnnnnnnnnn'… is 60 characters long; the limit is 45",
        "  - labels: label 'gpu,large' must not contain a comma (runners read labels as a comma"
        " list)",
    ]
    assert recorder.of_type(SCALE_SET_TYPE) == [] and recorder.of_type(TYPE) == []


# -- every Args field is a key, and a row of the docs ----------------------------------------


def _nested(tp: Any) -> type | None:
    """The dataclass a field holds (optionally, or as list items), or None."""
    if dataclasses.is_dataclass(tp):
        return tp
    found = [d for arg in typing.get_args(tp) if (d := _nested(arg)) is not None]
    return found[0] if found else None


def _args_paths(cls: type, path: str = "") -> Iterator[str]:
    """The path of every field of ``cls`` and of the dataclasses it holds."""
    hints = typing.get_type_hints(cls, localns={"Output": pulumi.Output, "T": Any})
    for f in dataclasses.fields(cls):
        here = f"{path}.{f.name}" if path else f.name
        if here == "scale_sets":  # each: a ScaleSet and its bounds
            yield from _args_paths(ListenerScaleSet, "scale_sets[]")
            yield from _args_paths(ScaleSetArgs, "scale_sets[]")
        elif (nested := _nested(hints[f.name])) is not None:
            yield from _args_paths(nested, here)
        else:
            yield here


def documented_keys() -> dict[str, str]:
    """docs/components.md's stack configuration table: key -> default cell."""
    table = doc_section("components.md", "### Stack configuration (namespace `gha-scalesets`)")
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in table.splitlines()
        if line.startswith("| `")
    ]
    return {re.match(r"`([^`]+)`", row[0])[1]: row[2] for row in rows}  # type: ignore[index]


def _cell(default: Any) -> str:
    if default is MISSING:
        return "required"
    if default in (None, (), {}):
        return ""
    text = default if isinstance(default, str) else json.dumps(default)
    return f"`{text}`"


def test_every_args_field_has_a_config_key_and_a_docs_row() -> None:
    keys = SCHEMA.config_keys()
    # What a ScaleSet shares with the listener (URL, credential, CA) is the listener's key.
    shared = tuple(f"scale_sets[].{f.name}" for f in dataclasses.fields(ScaleSetListenerArgs))
    fields = {
        path
        for path in _args_paths(ScaleSetListenerArgs)
        if not path.startswith(shared)
        and path != "scale_sets[].scale_set"
        and path.partition("[")[0].partition(".")[0] not in SKIPPED  # no key (yet), by design
    }

    assert len(fields) > 45
    assert sorted(fields - {k.path for k in keys}) == []  # each field the component takes
    documented = documented_keys()
    assert sorted({k.key for k in keys} ^ set(documented)) == []  # one row per key, no other
    assert {k.key: _cell(k.default) for k in keys} == documented  # defaults as the Args say


def test_the_documented_example_stacks_use_only_known_keys() -> None:
    for example in ("ec2", "ecs", "k8s"):
        run_program("dev", example_config(example))


# -- fields added later come through with nothing to write ------------------------------------


@dataclass
class WarmPolicy:
    """A made-up option: a list of objects, as warm-capacity policies may be."""

    cron: str
    runners: int = 1


@dataclass
class LaterEcs(EcsOptions):
    ephemeral_storage_gb: int = 21


@dataclass
class LaterScaleSet(ListenerScaleSet):
    warm: Sequence[WarmPolicy] = ()


@dataclass
class LaterArgs(ScaleSetListenerArgs):
    pool_size: int = 4
    webhook_secret: str | None = field(default=None, repr=False)
    ecs: LaterEcs = field(default_factory=LaterEcs)


def test_fields_added_later_are_keys_with_their_defaults_and_reach_the_args() -> None:
    schema = ConfigSchema(LaterArgs, (ScaleSetArgs, LaterScaleSet))
    keys = {k.key: k for k in schema.config_keys()}

    assert keys["poolSize"].default == 4
    assert keys["ecs.ephemeralStorageGb"].default == 21
    assert keys["scaleSets[].warm[].cron"].default is MISSING
    assert keys["webhookSecret"].secret
    given = schema.model().model_validate(
        {
            "poolSize": "8",
            "ecs": {"ephemeralStorageGb": 50},
            "scaleSets": [{"name": "linux", "warm": {"cron": "0 8 * * 1-5", "runners": 3}}],
        }
    )
    args = schema.values(LaterArgs, given, "", {"webhook_secret": "s3cret"})
    assert (args["pool_size"], args["ecs"].ephemeral_storage_gb) == (8, 50)
    assert args["webhook_secret"] == "s3cret"
    entry = given.scale_sets[0]  # type: ignore[attr-defined]
    assert schema.values(LaterScaleSet, entry, "scale_sets[]", {}) == {
        "warm": [WarmPolicy(cron="0 8 * * 1-5", runners=3)]
    }


def test_a_field_with_no_config_form_is_named_when_the_model_is_built() -> None:
    @dataclass
    class Odd(ScaleSetListenerArgs):
        hook: Any = None
        callback: type = object

    with pytest.raises(UnmappedField, match="callback"):
        ConfigSchema(Odd).model()
