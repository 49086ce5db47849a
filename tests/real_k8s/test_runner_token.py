"""Runner pods get no Kubernetes API token unless one is asked for (jobs run untrusted code).

The runner settings are exactly what the component hands the listener
(``components.k8s.runner_settings``), with the runner ServiceAccount as the component makes
it (``automountServiceAccountToken: false``); the real ServiceAccount admission decides
whether the pod gets the token volume.
"""

from __future__ import annotations

from typing import Any

import pytest

from gha_scalesets.components.args import K8sOptions
from gha_scalesets.components.k8s import runner_settings
from tests.support.kube_rest import KubeRest
from tests.support.runtimes import specs

RUNNER_ACCOUNT = "ci-runner"
TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def _token_volumes(pod: dict[str, Any]) -> list[str]:
    """Volumes that project a service-account token."""
    return [
        volume["name"]
        for volume in pod["spec"].get("volumes", [])
        for source in volume.get("projected", {}).get("sources", [])
        if "serviceAccountToken" in source
    ]


@pytest.mark.parametrize("token", [False, True], ids=["default", "opted-in"])
async def test_runner_pod_mounts_an_api_token_only_when_asked(
    token: bool, make_runtime: Any, admin: KubeRest, namespace: str
) -> None:
    admin.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts",
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": RUNNER_ACCOUNT},
            "automountServiceAccountToken": False,
        },
    )
    options = K8sOptions(namespace=namespace, runner_service_account_token=token)
    runtime = make_runtime(**runner_settings(options, namespace, RUNNER_ACCOUNT))

    [result] = await runtime.launch(specs(1))

    assert result.error is None
    pod = admin.get(f"/api/v1/namespaces/{namespace}/pods/{result.provider_id}")
    assert pod["spec"]["serviceAccountName"] == RUNNER_ACCOUNT
    assert pod["spec"]["automountServiceAccountToken"] is token
    [container] = pod["spec"]["containers"]
    mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
    if token:
        assert len(_token_volumes(pod)) == 1
        assert TOKEN_MOUNT in mounts
    else:
        assert _token_volumes(pod) == []
        assert TOKEN_MOUNT not in mounts
