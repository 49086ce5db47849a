"""Fixtures of the real-apiserver tier: a namespace per test, runtimes as the listener user."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gha_scalesets.listener.config import K8sRuntimeConfig
from gha_scalesets.listener.runtimes.k8s import K8sRuntime
from gha_scalesets.scaleset.retry import RetryPolicy
from tests.fixtures.control_plane import ControlPlane
from tests.fixtures.secret_scan import declare_secret_input
from tests.support.factories import closing_factory
from tests.support.kube_rest import KubeRest
from tests.support.runtimes import WatchGate


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace enforcing PodSecurity ``restricted`` with the listener's Role bound
    to the listener user; deleted after the test."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = control_plane.listener_namespace(f"{stem}-{uuid.uuid4().hex[:6]}")
    yield name
    control_plane.delete_namespace(name)


@pytest.fixture
def admin(control_plane: ControlPlane) -> KubeRest:
    return control_plane.admin()


@pytest.fixture
def listener_kubeconfig(control_plane: ControlPlane, tmp_path: Path) -> Path:
    """A kubeconfig file of the listener user (no rights but the Role's)."""
    path = declare_secret_input(tmp_path / "listener.kubeconfig")
    return control_plane.write_kubeconfig(path, control_plane.listener_token)


@pytest.fixture
async def make_runtime(
    namespace: str, listener_kubeconfig: Path
) -> AsyncIterator[Callable[..., K8sRuntime]]:
    """Build K8sRuntimes in ``namespace`` authenticated as the listener user (closed after
    the test); ``overrides`` go to the config, ``retry`` and ``clock`` to the runtime."""

    def build(retry: RetryPolicy | None = None, **overrides: Any) -> K8sRuntime:
        clock = overrides.pop("clock", None)
        settings: dict[str, Any] = {
            "namespace": namespace,
            "kubeconfig": listener_kubeconfig,
            "image": "ghcr.io/actions/actions-runner:2.320.0",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
        }
        return K8sRuntime(
            K8sRuntimeConfig(**(settings | overrides)),
            retry=retry or WatchGate().policy,
            **({"clock": clock} if clock else {}),
        )

    async with closing_factory(build, K8sRuntime.close) as make:
        yield make
