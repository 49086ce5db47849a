"""`pulumi up` of the Kubernetes example stack, for real, and the listener on what it created.

The repository's own program (Pulumi.yaml and ``__main__.py`` at its root) runs through the
``pulumi`` command as docs/components.md tells users: ``Pulumi.example-k8s.yaml`` copied to a
stack file, ``stack init``, the secrets set, ``preview``, ``up``, ``destroy``; with the real
pulumi-kubernetes plugin, against the real control plane (``tests/fixtures/control_plane.py``)
and the simulator.
It deploys as an identity holding exactly ``examples/k8s-deployer-rbac.yaml``. The kubelet
stand-in runs the pods, so the provider's own await logic sees the Deployment become available.
Then the listener runs with the settings and credential files the component deployed,
authenticated as the listener's ServiceAccount, and serves a burst of jobs on runner pods.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gha_scalesets.components.k8s_secret import K8S_SECRET_MOUNT
from gha_scalesets.scaleset import SyncClient
from gha_scalesets.simulator.testing import SimulatorServer
from tests.engine.cli import ProjectCli, root_example_stack
from tests.fixtures.control_plane import ControlPlane
from tests.fixtures.secret_scan import declare_secret_input
from tests.fixtures.sim import SIM_PAT
from tests.fixtures.toolchain import require_tool
from tests.support.github import jobs_done
from tests.support.kube_rest import KubeError, KubeRest, poll
from tests.support.kubelet import kubelet_stand_in, runner_objects
from tests.support.listener import ListenerProcess
from tests.support.observe import FleetPeak
from tests.support.waits import wait_for

ROOT = Path(__file__).resolve().parents[2]
DEPLOYER_RBAC = ROOT / "examples/k8s-deployer-rbac.yaml"
DEPLOYER_NAMESPACE = "default"
JOBS = 12
MAX_RUNNERS = 4

# What docs/components.md's "What it creates" lists for Kubernetes, by resource type.
CREATED = {
    "kubernetes:core/v1:Namespace",
    "kubernetes:core/v1:Secret",
    "kubernetes:core/v1:ServiceAccount",
    "kubernetes:rbac.authorization.k8s.io/v1:Role",
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
    "kubernetes:apps/v1:Deployment",
    "kubernetes:policy/v1:PodDisruptionBudget",
    "kubernetes:core/v1:Service",
    "kubernetes:core/v1:ConfigMap",
    "pulumi-python:dynamic/github:ScaleSet",
}


def _scale_set_exists(github: SyncClient, name: str) -> bool:
    group = github.get_runner_group_by_name("Default")
    return github.get_scale_set_by_name(group.id, name) is not None


def _rbac_documents() -> tuple[dict[str, Any], dict[str, Any]]:
    role, binding = yaml.safe_load_all(DEPLOYER_RBAC.read_text())
    return role, binding


@pytest.fixture
def deployer_kubeconfig(control_plane: ControlPlane, tmp_path: Path) -> Iterator[Path]:
    """A kubeconfig of a ServiceAccount bound to exactly the documented deployer ClusterRole."""
    admin = control_plane.admin()
    role, binding = _rbac_documents()
    account = f"deployer-{uuid.uuid4().hex[:6]}"
    name = f"{role['metadata']['name']}-{account}"
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    role["metadata"]["name"] = binding["metadata"]["name"] = binding["roleRef"]["name"] = name
    binding["subjects"] = [
        {"kind": "ServiceAccount", "name": account, "namespace": DEPLOYER_NAMESPACE}
    ]
    admin.create(f"{rbac}/clusterroles", role)
    admin.create(f"{rbac}/clusterrolebindings", binding)
    token = control_plane.service_account_token(DEPLOYER_NAMESPACE, account)
    path = declare_secret_input(tmp_path / "deployer.kubeconfig")
    yield control_plane.write_kubeconfig(path, token)
    for kind in ("clusterrolebindings", "clusterroles"):
        admin.delete(f"{rbac}/{kind}/{name}")


@pytest.fixture
def example_stack(tmp_path: Path) -> Iterator[tuple[ProjectCli, str]]:
    """The root project with a new stack made from ``Pulumi.example-k8s.yaml``."""
    with root_example_stack("k8s", tmp_path / "pulumi") as made:
        yield made


def _live_objects(admin: KubeRest, namespace: str) -> dict[str, set[str]]:
    base = f"/api/v1/namespaces/{namespace}"
    paths = {
        "deployments": f"/apis/apps/v1/namespaces/{namespace}/deployments",
        "roles": f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
        "rolebindings": f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
        "services": f"{base}/services",
        "configmaps": f"{base}/configmaps",
        "secrets": f"{base}/secrets",
        "serviceaccounts": f"{base}/serviceaccounts",
    }
    return {kind: admin.names(path) for kind, path in paths.items()}


def _listener_environment(
    control_plane: ControlPlane, admin: KubeRest, namespace: str, files: Path
) -> dict[str, str]:
    """The listener's settings as deployed: the Deployment's environment, its mounted
    credential written to ``files``, and a kubeconfig holding a token of its ServiceAccount
    (what in-cluster config gives the pod)."""
    [deployment] = admin.get(f"/apis/apps/v1/namespaces/{namespace}/deployments")["items"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == K8S_SECRET_MOUNT]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    secret = admin.get(f"/api/v1/namespaces/{namespace}/secrets/{volume['secret']['secretName']}")
    mounted = files / "credential"
    mounted.mkdir()
    for key, value in secret["data"].items():
        declare_secret_input(mounted / key).write_bytes(base64.b64decode(value))
    env["LISTENER_CREDENTIALS"] = env["LISTENER_CREDENTIALS"].replace(
        K8S_SECRET_MOUNT, str(mounted)
    )
    token = control_plane.service_account_token(namespace, pod["serviceAccountName"])
    kubeconfig = declare_secret_input(files / "in-cluster.kubeconfig")
    control_plane.write_kubeconfig(kubeconfig, token, namespace)
    runtime = json.loads(env["LISTENER_K8S"]) | {"kubeconfig": str(kubeconfig)}
    return env | {
        "LISTENER_K8S": json.dumps(runtime),
        "LISTENER_METRICS_PORT": "0",
        "LISTENER_METRICS_HOST": "127.0.0.1",
    }


async def _burst_on_the_deployment(
    sim: SimulatorServer, admin: KubeRest, namespace: str, env: dict
) -> float:
    """JOBS jobs served by the listener running with the deployed settings; seconds taken."""
    label = json.loads(env["LISTENER_SCALE_SETS"])[0]["name"]
    async with FleetPeak(sim) as peak:
        listener = ListenerProcess(env=env)
        try:
            await wait_for(lambda: listener.logged("session opened"), 60, "the session")
            started = time.monotonic()
            sim.queue_jobs([label], count=JOBS, duration_seconds=0.5)
            await wait_for(jobs_done(sim, JOBS), 240, f"{JOBS} jobs")
            took = time.monotonic() - started
            await wait_for(
                lambda: runner_objects(admin, namespace) == 0, 60, "no runner pod or secret left"
            )
        finally:
            listener.stop()
    assert listener.proc.returncode == 0
    assert listener.logged("runner launch failed") == 0
    assert sim.stats()["jobs"]["completed"] == JOBS
    assert 0 < peak.peak <= MAX_RUNNERS
    return took


@pytest.mark.timeout(600)
async def test_the_k8s_stack_applied_for_real_and_the_listener_on_what_it_created(
    example_stack: tuple[ProjectCli, str],
    control_plane: ControlPlane,
    sim: SimulatorServer,
    github: SyncClient,
    deployer_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    require_tool("pulumi-resource-kubernetes")
    pulumi, stack = example_stack
    admin = control_plane.admin()
    namespace = f"gha-stack-{uuid.uuid4().hex[:6]}"
    pulumi.init(
        stack,
        {"githubConfigUrl": sim.config_url("acme")},
        {"githubToken": SIM_PAT, "kubeconfig": deployer_kubeconfig.read_text()},
    )
    pulumi("config", "set", "--path", "k8s.namespace", namespace)

    with kubelet_stand_in(control_plane, namespace) as kubelet:
        preview = pulumi.json("preview")
        assert preview.types("create") >= CREATED
        assert sim.api_calls() == 0

        started = time.monotonic()
        created = pulumi.json("up")
        up_seconds = time.monotonic() - started
        assert created.types("create") >= CREATED
        live = _live_objects(admin, namespace)
        assert all(live[kind] for kind in live), live
        labels = admin.get(f"/api/v1/namespaces/{namespace}")["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
        assert _scale_set_exists(github, "k8s-linux")

        assert pulumi.json("preview").changed() == {}

        pulumi(
            "config", "set", "--path", "scaleSets[0].maxRunners", str(MAX_RUNNERS), "--type", "int"
        )
        update = pulumi.json("preview")
        assert {(s.type, s.op) for s in update.steps if s.op != "same"} == {
            ("kubernetes:apps/v1:Deployment", "update")
        }
        pulumi.json("up")

    with kubelet_stand_in(control_plane, namespace, runners=True):
        env = _listener_environment(control_plane, admin, namespace, tmp_path)
        assert json.loads(env["LISTENER_SCALE_SETS"])[0]["max_runners"] == MAX_RUNNERS
        burst_seconds = await _burst_on_the_deployment(sim, admin, namespace, env)

        started = time.monotonic()
        destroyed = pulumi.json("destroy")
        destroy_seconds = time.monotonic() - started
    assert set(destroyed.changed().values()) == {"delete"}
    assert not _scale_set_exists(github, "k8s-linux")

    def namespace_gone() -> bool:
        try:
            admin.get(f"/api/v1/namespaces/{namespace}")
        except KubeError as exc:
            return exc.status == 404
        return False

    poll(namespace_gone, 60, f"namespace {namespace} deleted")
    assert kubelet.errors == []
    print(
        f"k8s stack through the CLI: up {up_seconds:.1f} s, destroy {destroy_seconds:.1f} s; "
        f"burst on the deployed settings: {JOBS}/{JOBS} jobs in {burst_seconds:.1f} s"
    )
