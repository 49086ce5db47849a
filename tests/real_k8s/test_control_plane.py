"""The control plane and the kubelet stand-in serve what a deployment of the component needs:
the listener's own pod spec is admitted under PodSecurity ``restricted``, its Deployment
reports Available once the stand-in runs the pod, and its Service gets an endpoint."""

from __future__ import annotations

from gha_scalesets.components.k8s import listener_pod_spec, spread
from tests.fixtures.control_plane import ControlPlane
from tests.support.kube_rest import KubeRest, poll
from tests.support.kubelet import kubelet_stand_in

LABELS = {"app.kubernetes.io/name": "gha-scalesets-listener"}


def test_listener_deployment_becomes_available_with_an_endpoint(
    control_plane: ControlPlane, admin: KubeRest, namespace: str
) -> None:
    ns = f"/api/v1/namespaces/{namespace}"
    admin.create(f"{ns}/serviceaccounts", {"metadata": {"name": "listener"}})
    admin.create(f"{ns}/secrets", {"metadata": {"name": "github"}, "stringData": {"token": "x"}})
    spec = listener_pod_spec(
        image="gha-scalesets-listener:test",
        env={"LISTENER_RUNTIME": "k8s"},
        service_account="listener",
        credential_secret="github",
        metrics_port=9102,
        resources={"requests": {"cpu": "100m", "memory": "128Mi"}},
        affinity=spread(LABELS),
    )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "listener"},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": LABELS},
            "template": {"metadata": {"labels": LABELS}, "spec": spec},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "metrics"},
        "spec": {"selector": LABELS, "ports": [{"port": 9102, "targetPort": "metrics"}]},
    }
    with kubelet_stand_in(control_plane, namespace):
        admin.create(f"/apis/apps/v1/namespaces/{namespace}/deployments", deployment)
        admin.create(f"{ns}/services", service)

        def available() -> bool:
            status = admin.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/listener")
            conditions = status.get("status", {}).get("conditions", [])
            return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)

        poll(available, 60, "the Deployment to be Available")
        slices = f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"

        def endpoint() -> list[str]:
            items = admin.get(slices, labelSelector="kubernetes.io/service-name=metrics")["items"]
            return [a for s in items for e in s.get("endpoints") or [] for a in e["addresses"]]

        [address] = poll(endpoint, 60, "the Service's endpoint")
    assert address.startswith("10.244.")
