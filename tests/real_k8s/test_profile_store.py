"""The learned demand profile in a ConfigMap on the real apiserver, as the listener user: the
store round-trips, and the Role's ConfigMap verbs are exactly what it uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from gha_scalesets.components.k8s import listener_rules
from gha_scalesets.listener.config import K8sRuntimeConfig
from gha_scalesets.listener.registry.kubernetes import KubernetesProfileStore, config_map_name
from tests.fixtures.control_plane import ControlPlane
from tests.support.kube_rest import KubeError, KubeRest
from tests.support.profiles import a_profile


async def test_the_profile_store_on_exactly_the_roles_config_map_rights(
    control_plane: ControlPlane, admin: KubeRest, namespace: str, listener_kubeconfig: Path
) -> None:
    mark = control_plane.audit_mark()
    store = KubernetesProfileStore(
        K8sRuntimeConfig(namespace=namespace, kubeconfig=listener_kubeconfig)
    )
    try:
        assert await store.load_profile(7) is None
        await store.save_profile(7, a_profile(3.0))
        await store.save_profile(7, a_profile(5.0))  # replaces
        assert await store.load_profile(7) == a_profile(5.0)
    finally:
        await store.close()

    stored = admin.get(f"/api/v1/namespaces/{namespace}/configmaps/{config_map_name(7)}")
    assert stored["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "gha-scalesets"}
    used = {
        verb
        for verb, resource in control_plane.requests(mark, namespace)
        if resource == "configmaps"
    }
    granted = {v for r in listener_rules() if "configmaps" in r["resources"] for v in r["verbs"]}
    assert used == granted == {"get", "create", "patch"}

    listener = control_plane.client(control_plane.listener_token)
    try:
        for method, path in (
            ("DELETE", f"/api/v1/namespaces/{namespace}/configmaps/{config_map_name(7)}"),
            ("GET", f"/api/v1/namespaces/{namespace}/configmaps"),  # no list
            ("GET", f"/api/v1/namespaces/default/configmaps/{config_map_name(7)}"),
        ):
            with pytest.raises(KubeError) as denied:
                listener.request(method, path)
            assert (denied.value.status, denied.value.reason) == (403, "Forbidden"), path
    finally:
        listener.close()
