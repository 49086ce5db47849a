"""``__main__.py`` under Pulumi mocks with each committed example stack, as ``pulumi up`` runs it.

Each example is used as it is, plus the one secret its header says to set with
``pulumi config set --secret githubToken`` (secrets cannot be committed in plain text).
"""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from gha_scalesets.components import ListenerConfigError
from gha_scalesets.components.listener import TYPE
from gha_scalesets.components.stack_config import (
    SECRET_KEYS,
    Ec2Config,
    EcsConfig,
    GitHubAppConfig,
    K8sConfig,
    ScaleSetConfig,
    StackConfig,
)
from tests.components.builders import TOKEN
from tests.components.mocks import SCALE_SET_TYPE, Recorder, run
from tests.fixtures.docs import doc_section

ROOT = Path(__file__).resolve().parents[2]
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]
EXAMPLES = {
    "ec2": "aws:autoscaling/group:Group",
    "ecs": "aws:ecs/service:Service",
    "k8s": "kubernetes:apps/v1:Deployment",
}


def documented_outputs() -> dict[str, set[str]]:
    """docs/components.md's "Outputs" table: the stack outputs it lists as exported, per runtime."""
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in doc_section("components.md", "## Outputs").splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ]
    header, body = rows[0], rows[1:]
    runtimes = header[1:-1]  # | output | <runtime> ... | value |
    return {
        runtime: {row[0].strip("`") for row in body if row[1 + column] == "yes"}
        for column, runtime in enumerate(runtimes)
    }


def _stack_config(path: Path) -> dict[str, str]:
    """The config map the CLI hands a program: objects and lists as JSON text."""
    config = yaml.safe_load(path.read_text())["config"]
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def _run_program(stack: str, config: dict[str, str]) -> tuple[Recorder, dict[str, Any]]:
    # A fresh root stack resource: set_mocks keeps the last one, with its exports.
    pulumi.runtime.settings.ROOT.set(None)
    recorder = Recorder().install(stack=stack)
    pulumi.runtime.set_all_config(config, [f"{PROJECT}:githubToken"])

    def program() -> dict[str, Any]:
        runpy.run_path(str(ROOT / "__main__.py"))
        return dict(pulumi.runtime.settings.get_root_resource().outputs)  # type: ignore[union-attr]

    return recorder, run(program)


def test_project_is_a_python_program_named_gha_scalesets() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert (project["name"], project["runtime"]["name"]) == ("gha-scalesets", "python")


@pytest.mark.parametrize("runtime", sorted(EXAMPLES))
def test_example_stack_deploys_its_scale_sets_and_listener(runtime) -> None:
    path = ROOT / f"Pulumi.example-{runtime}.yaml"
    config = _stack_config(path) | {f"{PROJECT}:githubToken": TOKEN}

    recorder, exports = _run_program(f"example-{runtime}", config)

    declared = json.loads(config[f"{PROJECT}:scaleSets"])
    scale_sets = {r.plain["name"]: r.plain for r in recorder.of_type(SCALE_SET_TYPE)}
    assert set(scale_sets) == {s["name"] for s in declared}
    for wanted in declared:
        # Without labels the provider's check defaults them to the name (no check under mocks).
        assert scale_sets[wanted["name"]].get("labels") == wanted.get("labels")
        assert (
            scale_sets[wanted["name"]]["github_config_url"] == config[f"{PROJECT}:githubConfigUrl"]
        )
    listener = recorder.one(TYPE)
    assert listener.name == "listener"
    assert recorder.of_type(EXAMPLES[runtime])
    assert set(exports["scaleSetIds"]) == set(scale_sets)
    assert TOKEN not in json.dumps(exports)
    if runtime == "k8s":
        assert exports["alertRulesConfigMap"] == "listener-alert-rules"
    else:
        assert exports["tableName"] and exports["queueUrl"]
        assert len(exports["alarmArns"]) == 8


@pytest.mark.parametrize("runtime", sorted(EXAMPLES))
def test_stack_outputs_are_exactly_those_the_docs_list_for_the_runtime(runtime) -> None:
    documented = documented_outputs()
    config = _stack_config(ROOT / f"Pulumi.example-{runtime}.yaml")
    config[f"{PROJECT}:githubToken"] = TOKEN

    _, exports = _run_program(f"example-{runtime}", config)

    assert set(documented) == set(EXAMPLES)
    assert sorted(exports) == sorted(documented[runtime])
    assert all(value not in (None, {}, []) for value in exports.values())


def test_example_with_a_github_app_instead_of_a_token(rsa_pem) -> None:
    config = _stack_config(ROOT / "Pulumi.example-ecs.yaml") | {
        f"{PROJECT}:githubApp": json.dumps({"clientId": "Iv1.abc", "installationId": 99}),
        f"{PROJECT}:githubAppPrivateKey": rsa_pem,
    }

    recorder, _ = _run_program("example-ecs", config)

    version = recorder.one("aws:secretsmanager/secretVersion:SecretVersion").plain
    assert json.loads(version["secretString"])["github_app"]["installation_id"] == 99


def test_stack_config_carries_the_corporate_network() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIBstackconfig\n-----END CERTIFICATE-----\n"
    config = _stack_config(ROOT / "Pulumi.example-k8s.yaml") | {
        f"{PROJECT}:githubToken": TOKEN,
        f"{PROJECT}:proxy": "http://bot:pw@proxy.corp:3128",
        f"{PROJECT}:noProxy": "ghes.corp",
        f"{PROJECT}:caBundle": pem,
    }

    recorder, _ = _run_program("example-k8s", config)

    proxy = recorder.one("kubernetes:core/v1:Secret", "listener-proxy").plain["stringData"]
    assert proxy["HTTPS_PROXY"] == "http://bot:pw@proxy.corp:3128"
    assert proxy["NO_PROXY"].endswith(",ghes.corp")
    assert (
        recorder.one("kubernetes:core/v1:ConfigMap", "listener-ca").plain["data"]["ca.pem"] == pem
    )
    assert all(r.plain["ca_bundle"] == pem for r in recorder.of_type(SCALE_SET_TYPE))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"runtime": "lambda"}, "gha-scalesets:runtime: Input should be 'ec2', 'ecs' or 'k8s'"),
        ({"scaleSets": None}, "gha-scalesets:scaleSets: Field required"),
        (
            {"scaleSets": [{"name": "a", "minRunners": 5, "maxRunners": 2}]},
            "gha-scalesets:scaleSets[0]: Value error, minRunners (5) is above maxRunners (2)",
        ),
        (
            {"scaleSets": [{"name": "a"}, {"name": "a"}]},
            "scaleSets: names must be unique (a)",
        ),
        ({"subnetIds": None}, "runtime ecs needs vpcId and subnetIds"),
        ({"ecs": {"runnerCpu": 1024}}, "runtime ecs needs ecs.runnerImage"),
        (
            {"scaleSets": [{"name": "a", "size": 3}]},
            "gha-scalesets:scaleSets[0].size: Extra inputs",
        ),
    ],
)
def test_bad_stack_config_names_the_key_to_fix(change, expected) -> None:
    config = _stack_config(ROOT / "Pulumi.example-ecs.yaml") | {f"{PROJECT}:githubToken": TOKEN}
    for key, value in change.items():
        if value is None:
            config.pop(f"{PROJECT}:{key}")
        else:
            config[f"{PROJECT}:{key}"] = value if isinstance(value, str) else json.dumps(value)

    with pytest.raises(ListenerConfigError) as caught:
        _run_program("example-ecs", config)

    assert expected in str(caught.value)
    assert "pulumi config set" in str(caught.value)


def test_docs_stack_configuration_table_names_every_key() -> None:
    """docs/components.md's "Stack configuration" lists every key the program reads."""
    table = doc_section("components.md", "### Stack configuration (namespace `gha-scalesets`)")
    models = [StackConfig, Ec2Config, EcsConfig, K8sConfig, ScaleSetConfig, GitHubAppConfig]
    keys = {field.alias or name for m in models for name, field in m.model_fields.items()}
    assert sorted(k for k in keys | set(SECRET_KEYS) if not re.search(rf"\b{k}\b", table)) == []
