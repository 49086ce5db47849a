"""The runtime contract (tests/support/runtime_contract.py) on every runtime of the fast tier:
EC2 and ECS against moto's server over HTTP, Kubernetes against the fake API server, local
processes. ``tests/real_k8s/test_runtime_contract.py`` runs it on a real kube-apiserver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gha_scalesets.listener.config import LocalRuntimeConfig
from gha_scalesets.listener.runtimes.local import LocalRuntime
from tests.support.runtime_contract import CHECKS, Driver
from tests.support.runtime_drivers import (
    Ec2Driver,
    EcsDriver,
    K8sDriver,
    LocalDriver,
    stand_in_runner,
)
from tests.support.runtimes import K8S_NAMESPACE


@pytest.fixture
async def local_runtime(tmp_path: Path) -> AsyncIterator[LocalRuntime]:
    config = LocalRuntimeConfig(
        runner_dir=stand_in_runner(tmp_path / "actions-runner"), stop_grace_seconds=2
    )
    runtime = LocalRuntime(config, tmp_path / "state")
    yield runtime
    await runtime.close()


def _ec2(request: pytest.FixtureRequest) -> Driver:
    network = request.getfixturevalue("network")
    runtime = request.getfixturevalue("make_ec2_runtime")()
    sqs = request.getfixturevalue("boto_client")("sqs")
    return Ec2Driver(runtime, sqs, network.queue_url)


def _ecs(request: pytest.FixtureRequest) -> Driver:
    network = request.getfixturevalue("network")
    runtime = request.getfixturevalue("make_ecs_runtime")()
    client = request.getfixturevalue("boto_client")
    cluster = request.getfixturevalue("cluster")
    return EcsDriver(runtime, client("sqs"), network.queue_url, client("ecs"), cluster)


def _k8s(request: pytest.FixtureRequest) -> Driver:
    runtime = request.getfixturevalue("make_k8s_runtime")()
    fake = request.getfixturevalue("k8s_api").state

    def set_phase(pod: str, phase: str, **status: Any) -> None:
        fake.set_pod_phase(K8S_NAMESPACE, pod, phase, **status)

    return K8sDriver(runtime, set_phase)


def _local(request: pytest.FixtureRequest) -> Driver:
    return LocalDriver(request.getfixturevalue("local_runtime"))


DRIVERS: dict[str, Callable[[pytest.FixtureRequest], Driver]] = {
    "ec2": _ec2,
    "ecs": _ecs,
    "k8s-fake": _k8s,
    "local": _local,
}


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Driver:
    return DRIVERS[request.param](request)


@pytest.mark.parametrize("check", sorted(CHECKS))
async def test_runtime_contract(driver: Driver, check: str) -> None:
    await CHECKS[check](driver)
