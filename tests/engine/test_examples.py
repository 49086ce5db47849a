"""Each ``examples/`` project as a user runs it: copied out of the repository, its own
``requirements.txt`` satisfied by the built wheel in a fresh virtualenv, then the ``pulumi``
commands its docstring gives, against the simulator (and the real control plane for the
Kubernetes one). The ECS example needs the AWS provider plugin, which cannot be built here: it
runs under mocks (tests/examples/) and in the packaging tier.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from gha_scalesets.scaleset import SyncClient
from gha_scalesets.simulator.testing import SimulatorServer
from tests.engine.cli import ProjectCli
from tests.fixtures.control_plane import ControlPlane
from tests.fixtures.packaging import UserVenv
from tests.fixtures.sim import SIM_PAT, Requests
from tests.fixtures.toolchain import require_tool
from tests.support.kube_rest import KubeError, poll
from tests.support.kubelet import kubelet_stand_in
from tests.support.programs import EXAMPLES


def example_project(example: str, root: Path, venv: UserVenv) -> ProjectCli:
    """``examples/<example>`` copied to ``root``, its ``venv`` the given virtualenv, which
    already satisfies its ``requirements.txt`` (checked without a package index)."""
    project = root / example
    shutil.copytree(EXAMPLES / example, project)
    (project / "venv").symlink_to(venv.path)
    venv.pip("install", "--no-index", "--requirement", "requirements.txt", cwd=project)
    return ProjectCli(project, root / "pulumi")


def test_scale_sets_only_example(
    user_venv: Callable[[str | None], UserVenv],
    sim: SimulatorServer,
    github: SyncClient,
    requests: Requests,
    tmp_path: Path,
) -> None:
    pulumi = example_project("scale-sets-only", tmp_path, user_venv("pulumi"))
    pulumi.init("dev", {"githubConfigUrl": sim.config_url("acme")}, {"githubToken": SIM_PAT})
    requests.delta()

    assert pulumi.json("preview").changed() == {"linux": "create", "gpu": "create"}
    assert sum(requests.delta().values()) == 0
    created = pulumi.json("up")
    assert created.changed() == {"linux": "create", "gpu": "create"}
    ids = created.outputs["scaleSetIds"]
    gpu = github.get_scale_set(int(ids["gpu-x64"]))
    assert (gpu.name, gpu.runner_setting.disable_update) == ("gpu-x64", True)
    requests.delta()

    assert pulumi.json("preview").changed() == {}
    assert sum(requests.delta().values()) == 0
    assert pulumi.json("destroy").changed() == {"linux": "delete", "gpu": "delete"}
    assert github.get_scale_set_by_name(gpu.runner_group_id, "gpu-x64") is None


@pytest.mark.timeout(600)
def test_k8s_existing_stack_example_on_the_real_control_plane(
    user_venv: Callable[[str | None], UserVenv],
    control_plane: ControlPlane,
    sim: SimulatorServer,
    github: SyncClient,
    tmp_path: Path,
) -> None:
    require_tool("pulumi-resource-kubernetes")
    admin = control_plane.admin()
    pulumi = example_project("k8s-existing-stack", tmp_path, user_venv("k8s"))
    pulumi.init(
        "dev",
        {"githubConfigUrl": sim.config_url("acme")},
        {"githubToken": SIM_PAT, "kubeconfig": control_plane.admin_kubeconfig.read_text()},
    )

    with kubelet_stand_in(control_plane, "ci"):  # the example's namespace
        created = pulumi.json("up")
        assert created.changed()["ci"] == "create"  # the stack's namespace, and the listener
        assert created.changed()["linux"] == "create"
        assert created.outputs["listener"] == "ci/ci-listener"
        [deployment] = admin.get("/apis/apps/v1/namespaces/ci/deployments")["items"]
        assert deployment["status"].get("availableReplicas") == 1
        group = github.get_runner_group_by_name("Default")
        assert github.get_scale_set_by_name(group.id, "linux-x64") is not None
        assert pulumi.json("preview").changed() == {}
        destroyed = pulumi.json("destroy")
    assert set(destroyed.changed().values()) == {"delete"}

    def namespace_gone() -> bool:
        try:
            admin.get("/api/v1/namespaces/ci")
        except KubeError as exc:
            return exc.status == 404
        return False

    poll(namespace_gone, 60, "namespace ci deleted")
