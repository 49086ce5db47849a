"""The Kubernetes runtime under Pulumi mocks: RBAC scope, pod hardening, secret, alert rules."""

from __future__ import annotations

import json
import re

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml
from pulumi.runtime import rpc

from gha_scalesets.components import K8sOptions, ScaleSetListener
from gha_scalesets.components.prometheus import pod_name_pattern
from gha_scalesets.providers import GitHubAppArgs
from tests.support.components import TOKEN, listener_args
from tests.support.pulumi_mocks import SCALE_SET_TYPE, run

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SECRET = "kubernetes:core/v1:Secret"
K8S_TYPES = {
    DEPLOYMENT,
    "kubernetes:core/v1:ConfigMap",
    "kubernetes:core/v1:Namespace",
    SECRET,
    "kubernetes:core/v1:Service",
    "kubernetes:core/v1:ServiceAccount",
    "kubernetes:policy/v1:PodDisruptionBudget",
    "kubernetes:rbac.authorization.k8s.io/v1:Role",
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
    "pulumi:providers:kubernetes",
    "gha-scalesets:index:ScaleSetListener",
    SCALE_SET_TYPE,
}


def _pod(recorder) -> dict:
    return recorder.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]


def _env(recorder) -> dict[str, str]:
    (container,) = _pod(recorder)["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def test_declares_only_namespaced_kubernetes_resources_through_the_given_provider(
    deploy, recorder
) -> None:
    outputs = deploy("k8s")

    assert recorder.types() == K8S_TYPES  # no ClusterRole/Binding, nothing on AWS
    provider = recorder.one("pulumi:providers:kubernetes")
    ours = [r for r in recorder.resources if r.typ.startswith("kubernetes:")]
    assert all(r.provider == f"{provider.urn}::{provider.id}" for r in ours)
    namespaced = [r for r in ours if r.typ != "kubernetes:core/v1:Namespace"]
    assert all(r.inputs["metadata"]["namespace"] == "ci-runners" for r in namespaced)
    assert outputs["listener_id"] == "ci-runners/ci-listener"
    assert outputs["secret_name"] == "ci-github"
    assert outputs["alert_rules_config_map"] == "ci-alert-rules"
    assert (outputs["table_name"], outputs["queue_url"], outputs["alarm_arns"]) == (None, None, {})


def test_listener_role_is_namespaced_and_limited_to_pods_secrets_profiles_and_leases(
    deploy, recorder
) -> None:
    deploy("k8s")

    role = recorder.one("kubernetes:rbac.authorization.k8s.io/v1:Role").inputs
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete", "list", "watch"]},
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["create", "delete", "list", "patch"],
        },
        # the adaptive warm capacity's learned profile: read, create once, patch
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "patch"]},
        # leadership: read, create once, renew by replace; standbys list; stale members deleted
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "list", "create", "update", "delete"],
        },
    ]
    binding = recorder.one("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding").inputs
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "ci-listener",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "ci-listener", "namespace": "ci-runners"}
    ]
    accounts = {r.name: r.inputs for r in recorder.of_type("kubernetes:core/v1:ServiceAccount")}
    assert accounts["ci-runner"]["automountServiceAccountToken"] is False


def test_listener_pod_runs_non_root_read_only_without_capabilities(deploy, recorder) -> None:
    deploy("k8s")

    deployment = recorder.one(DEPLOYMENT).inputs["spec"]
    assert deployment["replicas"] == 1
    pod = _pod(recorder)
    assert pod["serviceAccountName"] == "ci-listener"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    secret_volume = next(v for v in pod["volumes"] if "secret" in v)
    assert secret_volume["secret"] == {"secretName": "ci-github", "defaultMode": 0o440}
    service = recorder.one("kubernetes:core/v1:Service").inputs["spec"]
    assert service["ports"] == [{"name": "metrics", "port": 9102, "targetPort": "metrics"}]
    assert service["selector"].items() <= deployment["template"]["metadata"]["labels"].items()
    assert deployment["selector"]["matchLabels"] == service["selector"]


def test_token_lives_only_in_the_secret_and_is_read_from_a_file(
    deploy, recorder, settings_from_env
) -> None:
    deploy("k8s")

    secret = recorder.one(SECRET).inputs
    assert rpc.is_rpc_secret(secret["stringData"])
    assert rpc.unwrap_rpc_secret(secret["stringData"]) == {"token": TOKEN}
    others = [
        r.plain for r in recorder.resources if r.typ.startswith("kubernetes:") and r.typ != SECRET
    ]
    assert TOKEN not in json.dumps(others)

    settings = settings_from_env(_env(recorder))
    assert settings.runtime == "k8s"
    assert str(settings.credentials[0].token_file) == "/var/run/secrets/github/token"
    (container,) = _pod(recorder)["containers"]
    assert {
        "name": "github-credential",
        "mountPath": "/var/run/secrets/github",
        "readOnly": True,
    } in (container["volumeMounts"])
    assert settings.registry.type == "memory"  # the API server is the registry on Kubernetes
    assert settings.k8s.namespace == "ci-runners"
    assert settings.k8s.service_account == "ci-runner"
    assert settings.k8s.image == "ghcr.io/actions/actions-runner:latest"
    assert [(s.name, s.min_runners, s.max_runners) for s in settings.scale_sets] == [
        ("linux-x64", 0, 20),
        ("gpu", 1, 4),
    ]


@pytest.mark.parametrize("token", [False, True], ids=["default", "opted-in"])
def test_runner_pods_get_an_api_token_only_when_asked(
    token: bool, deploy, recorder, settings_from_env
) -> None:
    provider = k8s.Provider("cluster")
    options = K8sOptions(
        namespace="ci-runners", provider=provider, runner_service_account_token=token
    )
    deploy("k8s", k8s=options)

    settings = settings_from_env(_env(recorder))
    assert settings.k8s.service_account == "ci-runner"
    # Pod level: a pod's true would override the account's false, so the default says false.
    assert settings.k8s.automount_service_account_token is token
    accounts = {r.name: r.inputs for r in recorder.of_type("kubernetes:core/v1:ServiceAccount")}
    assert accounts["ci-runner"]["automountServiceAccountToken"] is False


def test_github_app_key_is_mounted_and_its_ids_configured(
    deploy, recorder, settings_from_env, rsa_pem
) -> None:
    app = GitHubAppArgs(client_id="Iv1.abc", installation_id=7, private_key=rsa_pem)
    deploy("k8s", github_token=None, github_app=app)

    secret = recorder.one(SECRET).inputs
    assert rpc.unwrap_rpc_secret(secret["stringData"]) == {"private_key": rsa_pem}
    settings = settings_from_env(_env(recorder))
    (credential,) = settings.credentials
    assert credential.app is not None
    assert (credential.app.client_id, credential.app.installation_id) == (
        "Iv1.abc",
        7,
    )
    assert str(credential.app.private_key_file) == "/var/run/secrets/github/private_key"
    assert "PRIVATE KEY" not in json.dumps(_env(recorder))


def test_several_credentials_are_mounted_side_by_side(
    deploy, recorder, settings_from_env, rsa_pem
) -> None:
    app = GitHubAppArgs(client_id="Iv1.abc", installation_id=7, private_key=rsa_pem)
    deploy("k8s", github_token=None, github_credentials=[TOKEN, app, "ghp_other"])

    secret = recorder.one(SECRET).inputs
    assert rpc.unwrap_rpc_secret(secret["stringData"]) == {
        "token-0": TOKEN,
        "private_key-1": rsa_pem,
        "token-2": "ghp_other",
    }
    settings = settings_from_env(_env(recorder))
    first, second, third = settings.credentials
    assert str(first.token_file) == "/var/run/secrets/github/token-0"
    assert second.app is not None and second.app.client_id == "Iv1.abc"
    assert str(second.app.private_key_file) == "/var/run/secrets/github/private_key-1"
    assert str(third.token_file) == "/var/run/secrets/github/token-2"
    assert settings.pacing.enabled and settings.pacing.ceilings == {}
    assert TOKEN not in json.dumps(_env(recorder))


def test_an_existing_namespace_and_a_provider_from_opts_are_used(recorder) -> None:
    def build() -> dict:
        provider = k8s.Provider("ambient")
        args = listener_args("k8s", k8s=K8sOptions(namespace="shared", create_namespace=False))
        listener = ScaleSetListener(
            "ci", args, pulumi.ResourceOptions(providers={"kubernetes": provider})
        )
        return {"id": listener.listener_id}

    outputs = run(build)

    assert recorder.of_type("kubernetes:core/v1:Namespace") == []
    assert outputs["id"] == "shared/ci-listener"
    provider = recorder.one("pulumi:providers:kubernetes")
    ours = [r for r in recorder.resources if r.typ.startswith("kubernetes:")]
    assert ours and all(r.provider == f"{provider.urn}::{provider.id}" for r in ours)


def test_new_namespace_enforces_baseline_pod_security(deploy, recorder) -> None:
    deploy("k8s")

    labels = recorder.one("kubernetes:core/v1:Namespace").inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"


def test_prometheus_alert_rules_cover_the_listener_and_use_its_metrics(deploy, recorder) -> None:
    deploy("k8s")

    data = recorder.one("kubernetes:core/v1:ConfigMap").inputs["data"]
    (group,) = yaml.safe_load(data["gha-scalesets.rules.yaml"])["groups"]
    rules = {r["alert"]: r for r in group["rules"]}
    assert set(rules) == {
        "GhaListenerDown",
        "GhaListenerNoLeader",
        "GhaListenerNoSession",
        "GhaApiErrorRate",
        "GhaJobsWaiting",
        "GhaIdleRunnerCost",
        "GhaCredentialBudgetLow",
        "GhaRunnerLaunchFailures",
        "GhaHttpPoolWait",
    }
    # Per-pod scraping labels series with namespace and pod (no service label).
    pods = 'pod=~"ci-listener-[a-z0-9]{1,10}-?[a-z0-9]{5}"'
    assert rules["GhaListenerDown"]["expr"] == f'absent(up{{namespace="ci-runners",{pods}}} == 1)'
    assert rules["GhaJobsWaiting"]["for"] == "10m"
    # Several replicas: fire when none leads / holds a session, read only the active's jobs.
    assert rules["GhaListenerNoLeader"]["expr"] == (
        f'sum by (name) (gha_listener_leader{{namespace="ci-runners",{pods}}}) < 1'
    )
    assert rules["GhaListenerNoSession"]["expr"].startswith("max by (name)")
    assert "* gha_listener_leader{" in rules["GhaJobsWaiting"]["expr"]
    assert "gha_listener_api_requests_total" in rules["GhaApiErrorRate"]["expr"]
    assert rules["GhaApiErrorRate"]["expr"].endswith("> 5.0")
    assert "gha_listener_launch_failures_total" in rules["GhaRunnerLaunchFailures"]["expr"]
    assert rules["GhaCredentialBudgetLow"]["expr"].startswith(
        "min by (credential) (gha_listener_credential_budget_ratio{"
    )
    assert rules["GhaCredentialBudgetLow"]["expr"].endswith(") < 0.1")
    assert rules["GhaHttpPoolWait"]["expr"].startswith("histogram_quantile(0.99, sum by (le, lane)")
    assert all(f'namespace="ci-runners",{pods}' in r["expr"] for r in rules.values())


@pytest.mark.parametrize(
    ("deployment", "pod", "matches"),
    [
        ("ci-listener", "ci-listener-6d4cf56db6-x2v9k", True),
        ("ci-listener", "ci-listener-x2v9k", False),  # not a Deployment's pod
        ("ci-listener", "ci-listener-b-listener-6d4cf56db6-x2v9k", False),  # of "ci-listener-b"
        ("ci.v2-listener", "ci.v2-listener-6d4cf56db6-x2v9k", True),
        ("ci.v2-listener", "cixv2-listener-6d4cf56db6-x2v9k", False),
        # Long names: the API server cuts "<deployment>-<hash>-" at 58 characters.
        ("a" * 40 + "-listener", "a" * 40 + "-listener-6d4cf56dx2v9k", True),
        ("a" * 47 + "-listener", "a" * 47 + "-listener-6x2v9k", True),
        ("a" * 48 + "-listener", "a" * 48 + "-listener-x2v9k", True),
        ("a" * 63 + "-listener", "a" * 58 + "x2v9k", True),
        ("a" * 63 + "-listener", "a" * 57 + "-x2v9k", False),
    ],
)
def test_pod_name_pattern_matches_the_pods_of_one_deployment(deployment, pod, matches) -> None:
    # RE2 and Python agree on this subset (classes, counted repetition, "?"); Prometheus
    # anchors its matchers, like fullmatch.
    assert bool(re.fullmatch(pod_name_pattern(deployment), pod)) is matches


def test_replicas_spread_over_nodes_roll_one_at_a_time_and_share_a_lease(
    deploy, recorder, settings_from_env
) -> None:
    deploy("k8s", replicas=2)

    deployment = recorder.one(DEPLOYMENT).inputs["spec"]
    assert deployment["replicas"] == 2
    # The new pod comes up as a standby before the old one stops and releases its leases.
    assert deployment["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    selector = deployment["selector"]["matchLabels"]
    (term,) = _pod(recorder)["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["podAffinityTerm"] == {
        "labelSelector": {"matchLabels": selector},
        "topologyKey": "kubernetes.io/hostname",
    }
    (container,) = _pod(recorder)["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    budget = recorder.one("kubernetes:policy/v1:PodDisruptionBudget").inputs
    assert budget["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": selector}}
    settings = settings_from_env(_env(recorder))
    assert settings.leadership.store == "auto" and settings.runtime == "k8s"  # -> a Lease
