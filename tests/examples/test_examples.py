"""Every program of ``examples/`` runs under Pulumi mocks and declares what its docs say, and
each is a standalone project."""

from __future__ import annotations

import json
import re

import yaml

from gha_scalesets.components.listener import TYPE as LISTENER_TYPE
from tests.fixtures.docs import doc_section
from tests.support.components import TOKEN
from tests.support.programs import EXAMPLES
from tests.support.pulumi_mocks import SCALE_SET_TYPE

KUBECONFIG = "apiVersion: v1\nkind: Config\n"
ORG = {"githubConfigUrl": "https://github.com/acme"}


def test_scale_sets_only_declares_two_scale_sets_and_nothing_else(run_example) -> None:
    recorder, exports = run_example(
        "scale-sets-only",
        {"githubConfigUrl": "https://github.com/acme"},
        {"githubToken": TOKEN},
    )

    assert recorder.types() == {SCALE_SET_TYPE}
    declared = {r.plain["name"]: r.plain for r in recorder.of_type(SCALE_SET_TYPE)}
    assert set(declared) == {"linux-x64", "gpu-x64"}
    assert declared["linux-x64"]["labels"] == ["linux-x64", "docker"]
    assert declared["gpu-x64"]["disable_update"] is True
    assert all(s["github_config_url"] == "https://github.com/acme" for s in declared.values())
    assert set(exports["scaleSetIds"]) == {"linux-x64", "gpu-x64"}
    assert TOKEN not in json.dumps(exports)


def test_ecs_example_uses_the_stacks_network_cluster_and_topic(run_example) -> None:
    recorder, exports = run_example("ecs-existing-stack", ORG, {"githubToken": TOKEN})

    recorder.one(LISTENER_TYPE, "ci")
    cluster = recorder.one("aws:ecs/cluster:Cluster")  # the stack's: the component adds none
    assert cluster.name == "apps"
    service = recorder.one("aws:ecs/service:Service").plain
    assert service["cluster"] == cluster.state["arn"]
    subnets = {r.id for r in recorder.of_type("aws:ec2/subnet:Subnet")}
    assert set(service["networkConfiguration"]["subnets"]) == subnets
    topic = recorder.one("aws:sns/topic:Topic").state["arn"]
    alarms = recorder.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    documented = re.findall(
        r"^\| `([a-z-]+)` \|",
        doc_section("components.md", "## Alarms and the metrics they read"),
        re.M,
    )
    assert len(alarms) == len(documented)
    assert set(exports["alarms"]) == set(documented)
    assert all(alarm.plain["alarmActions"] == [topic] for alarm in alarms)
    assert exports["listener"] == recorder.one("aws:ecs/service:Service").id
    assert TOKEN not in json.dumps(exports)


def test_k8s_example_deploys_through_the_stacks_provider_into_its_namespace(run_example) -> None:
    recorder, exports = run_example(
        "k8s-existing-stack", ORG, {"githubToken": TOKEN, "kubeconfig": KUBECONFIG}
    )

    provider = recorder.one("pulumi:providers:kubernetes", "cluster")
    assert recorder.one("kubernetes:core/v1:Namespace").name == "ci"  # the stack's only
    deployment = recorder.one("kubernetes:apps/v1:Deployment")
    assert deployment.plain["metadata"]["namespace"] == "ci"
    ours = [r for r in recorder.resources if r.typ.startswith("kubernetes:")]
    assert all(r.provider == f"{provider.urn}::{provider.id}" for r in ours)
    assert exports["listener"] == f"ci/{deployment.plain['metadata']['name']}"
    assert exports["alertRules"] == "ci-alert-rules"
    assert TOKEN not in json.dumps(exports)


def test_every_example_is_a_standalone_project_naming_the_package() -> None:
    """Copied anywhere, each installs from its own requirements.txt into its own virtualenv."""
    for project in sorted(p for p in EXAMPLES.iterdir() if p.is_dir()):
        settings = yaml.safe_load((project / "Pulumi.yaml").read_text())
        assert settings["runtime"]["options"]["virtualenv"] == "venv", project.name
        requirements = (project / "requirements.txt").read_text()
        assert re.search(r"^gha-scalesets\[(pulumi|aws|k8s)\]", requirements, re.M), project.name
        for path in project.rglob("*"):
            if path.is_file():
                assert "../" not in path.read_text(), f"{path} points back into the repository"
