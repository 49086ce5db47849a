"""``__main__.py`` under Pulumi mocks with each committed example stack, as ``pulumi up`` runs it.

Each example is used as it is, plus the one secret its header says to set with
``pulumi config set --secret githubToken`` (secrets cannot be committed in plain text).
"""

from __future__ import annotations

import json

import pytest
import yaml

from gha_scalesets.components.listener import TYPE
from tests.fixtures.docs import doc_section
from tests.support.components import TOKEN
from tests.support.programs import PROJECT, ROOT, example_config, run_program
from tests.support.pulumi_mocks import SCALE_SET_TYPE

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


def test_project_is_a_python_program_named_gha_scalesets() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert (project["name"], project["runtime"]["name"]) == ("gha-scalesets", "python")


@pytest.mark.parametrize("runtime", sorted(EXAMPLES))
def test_example_stack_deploys_its_scale_sets_and_listener(runtime) -> None:
    config = example_config(runtime)

    recorder, exports = run_program(f"example-{runtime}", config)

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
        # The example EC2 stack runs its runners on spot: one alarm more.
        assert len(exports["alarmArns"]) == (11 if runtime == "ec2" else 10)


@pytest.mark.parametrize("runtime", sorted(EXAMPLES))
def test_stack_outputs_are_exactly_those_the_docs_list_for_the_runtime(runtime) -> None:
    documented = documented_outputs()
    _, exports = run_program(f"example-{runtime}", example_config(runtime))

    assert set(documented) == set(EXAMPLES)
    assert sorted(exports) == sorted(documented[runtime])
    assert all(value not in (None, {}, []) for value in exports.values())


def test_example_with_a_github_app_instead_of_a_token(rsa_pem) -> None:
    config = example_config(
        "ecs",
        githubToken=None,
        githubApp={"clientId": "Iv1.abc", "installationId": 99},
        githubAppPrivateKey=rsa_pem,
    )

    recorder, _ = run_program("example-ecs", config)

    version = recorder.one("aws:secretsmanager/secretVersion:SecretVersion").plain
    assert json.loads(version["secretString"])["github_app"]["installation_id"] == 99


def test_stack_config_carries_the_corporate_network(private_ca) -> None:
    pem = private_ca.ca_pem
    config = example_config(
        "k8s", proxy="http://bot:pw@proxy.corp:3128", noProxy="ghes.corp", caBundle=pem
    )

    recorder, _ = run_program("example-k8s", config)

    proxy = recorder.one("kubernetes:core/v1:Secret", "listener-proxy").plain["stringData"]
    assert proxy["HTTPS_PROXY"] == "http://bot:pw@proxy.corp:3128"
    assert proxy["NO_PROXY"].endswith(",ghes.corp")
    assert (
        recorder.one("kubernetes:core/v1:ConfigMap", "listener-ca").plain["data"]["ca.pem"] == pem
    )
    assert all(r.plain["ca_bundle"] == pem for r in recorder.of_type(SCALE_SET_TYPE))


def test_stack_config_platform_reaches_the_task_definitions() -> None:
    recorder, _ = run_program("example-ecs", example_config("ecs", platform="linux/arm64"))

    tasks = recorder.of_type("aws:ecs/taskDefinition:TaskDefinition")
    assert {t.inputs["runtimePlatform"]["cpuArchitecture"] for t in tasks} == {"ARM64"}
