"""The runtime contract (tests/support/runtime_contract.py) on a real kube-apiserver, as the
listener user bound only by the component's Role, in a namespace enforcing PodSecurity
``restricted``; the test plays the kubelet through the pods' status subresource."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.kube_rest import KubeRest
from tests.support.runtime_contract import CHECKS
from tests.support.runtime_drivers import K8sDriver, kubelet


@pytest.mark.parametrize("check", sorted(CHECKS))
async def test_runtime_contract(
    check: str, make_runtime: Any, admin: KubeRest, namespace: str
) -> None:
    await CHECKS[check](K8sDriver(make_runtime(), kubelet(admin, namespace)))
