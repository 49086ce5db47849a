"""The Kubernetes runtime against a real kube-apiserver, as the listener user bound only by
the component's Role, in a namespace enforcing PodSecurity ``restricted``.

This is the runtime's contract: admission, RBAC, quota, defaulting, strategic-merge patches,
garbage collection and watch semantics are the real ones. What a real server cannot do on
demand (a 500 or 429, a watch dropped at an exact point) stays in ``tests/runtimes/test_k8s.py``
on the fake.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gha_scalesets.components.k8s import listener_rules
from gha_scalesets.listener.runtimes import k8s as k8s_module
from gha_scalesets.listener.runtimes.base import RunnerPhase
from tests.fixtures.control_plane import ControlPlane
from tests.support.k8s_objects import check_runner_objects
from tests.support.kube_rest import KubeError, KubeRest, poll
from tests.support.runtime_drivers import kubelet
from tests.support.runtimes import WatchGate, specs, take

_TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def _pods(admin: KubeRest, namespace: str) -> dict[str, dict[str, Any]]:
    items = admin.get(f"/api/v1/namespaces/{namespace}/pods")["items"]
    return {pod["metadata"]["name"]: pod for pod in items}


def _secrets(admin: KubeRest, namespace: str) -> set[str]:
    return admin.names(f"/api/v1/namespaces/{namespace}/secrets")


def _foreign_pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    """A pod made by someone else (a crashed listener, a person); ``restricted`` admits it."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1001},
            "containers": [
                {
                    "name": "runner",
                    "image": "runner",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                }
            ],
        },
    }


async def test_burst_creates_pods_with_owned_secrets_under_restricted(
    make_runtime: Any, admin: KubeRest, namespace: str, control_plane: ControlPlane
) -> None:
    runtime = make_runtime()
    burst = specs(12)
    mark = control_plane.audit_mark()

    results = await runtime.launch(burst)

    assert [r.error for r in results] == [None] * 12
    assert [r.provider_id for r in results] == [s.runner_name for s in burst]
    pods = _pods(admin, namespace)
    assert set(pods) == {s.runner_name for s in burst}
    for spec in burst:
        pod = pods[spec.runner_name]
        secret = admin.get(f"/api/v1/namespaces/{namespace}/secrets/{spec.runner_name}-jit")
        check_runner_objects(pod, secret, spec)
        assert pod["spec"]["serviceAccountName"] == "default"  # defaulted by the server
        assert _TOKEN_MOUNT not in json.dumps(pod)
    # Three requests per runner, as on the fake; the server saw exactly those.
    assert runtime.api_calls == {"k8s:CreateSecret": 12, "k8s:CreatePod": 12, "k8s:PatchSecret": 12}
    assert control_plane.requests(mark, namespace) == {
        ("create", "secrets"): 12,
        ("create", "pods"): 12,
        ("patch", "secrets"): 12,
    }

    # Terminate: the Pod goes, and the garbage collector (asynchronous) takes its Secret.
    gone = burst[0].runner_name
    await runtime.terminate([gone])
    assert gone not in _pods(admin, namespace)
    poll(lambda: f"{gone}-jit" not in _secrets(admin, namespace), 30, "the Secret's collection")
    assert len([s for s in _secrets(admin, namespace) if s.endswith("-jit")]) == 11
    assert runtime.terminate_errors == {}


async def test_apiserver_restart_gives_410_and_exactly_one_relist(
    make_runtime: Any, admin: KubeRest, namespace: str, control_plane: ControlPlane
) -> None:
    gate = WatchGate()
    runtime = make_runtime(retry=gate.policy)
    stream = runtime.events()
    a, b = specs(2)
    await runtime.launch([a, b])
    await take(stream, 2)
    assert runtime.api_calls["k8s:ListPods"] == 1

    # The apiserver goes away under the open watch; the runtime's re-watch is held while
    # the cluster goes on writing (an apiserver restarted after no write at all resumes
    # old watches), the new apiserver starts and a pod is deleted.
    gate.open.clear()
    gate.waiting.clear()
    await asyncio.to_thread(control_plane.stop_apiserver)
    await asyncio.wait_for(gate.waiting.wait(), 30)
    control_plane.write_to_etcd()
    await asyncio.to_thread(control_plane.start_apiserver)
    admin.delete(f"/api/v1/namespaces/{namespace}/pods/{b.runner_name}")
    gate.open.set()

    # Resumed from its old version, the watch gets 410 Gone; one relist reports the pod.
    [deleted] = await take(stream, 1, timeout=60)
    assert (deleted.provider_id, deleted.phase, deleted.reason) == (
        b.runner_name,
        RunnerPhase.STOPPED,
        "pod deleted",
    )
    assert runtime.api_calls["k8s:ListPods"] == 2
    # The pod still there is not reported again.
    kubelet(admin, namespace)(a.runner_name, "Running")
    [running] = await take(stream, 1)
    assert (running.provider_id, running.phase) == (a.runner_name, RunnerPhase.RUNNING)


async def test_quota_refusal_is_retryable_and_leaves_no_secret(
    make_runtime: Any, admin: KubeRest, namespace: str
) -> None:
    quota = f"/api/v1/namespaces/{namespace}/resourcequotas"
    admin.create(
        quota,
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "runners"},
            "spec": {"hard": {"pods": "2"}},
        },
    )
    # Admission refuses every pod until the quota controller has computed the usage.
    poll(lambda: admin.get(f"{quota}/runners").get("status", {}).get("used"), 30, "quota usage")
    runtime = make_runtime()

    results = await runtime.launch(specs(3))

    launched = [r for r in results if r.provider_id]
    [refused] = [r for r in results if r.provider_id is None]
    assert len(launched) == 2
    assert refused.retryable
    assert "403:Forbidden" in refused.error and "exceeded quota" in refused.error
    assert runtime.launch_errors == {"403:Forbidden": 1}
    runner_secrets = {s for s in _secrets(admin, namespace) if s.endswith("-jit")}
    assert runner_secrets == {f"{r.provider_id}-jit" for r in launched}


async def test_the_role_is_sufficient_and_minimal(
    make_runtime: Any,
    admin: KubeRest,
    namespace: str,
    control_plane: ControlPlane,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every verb of the Role is used by the runtime, the runtime uses nothing else, and
    what the Role does not grant is refused."""
    mark = control_plane.audit_mark()
    runtime = make_runtime(clock=lambda: 4102444800.0)  # 2100: every stray Secret is old
    stream = runtime.events()
    a, b = specs(2)
    await runtime.launch([a, b])
    await take(stream, 2)
    await runtime.terminate([a.runner_name])
    stray = {"gha-scaleset/id": "7", "gha-scaleset/runner-name": "gone"}
    admin.create(
        f"/api/v1/namespaces/{namespace}/secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "gone-jit", "labels": stray}},
    )
    monkeypatch.setattr(k8s_module, "_PAGE", 1)
    listed = await runtime.list_runners(7)
    await take(stream, 1)  # a's deletion

    assert [r.runner_name for r in listed] == [b.runner_name]
    assert "gone-jit" not in _secrets(admin, namespace)
    assert runtime.launch_errors == {} and runtime.terminate_errors == {}
    used = set(control_plane.requests(mark, namespace))
    # Every rule of the Role but those of the leadership store (leases) and of the demand
    # profile store (configmaps), each checked with its own store.
    granted = {
        (verb, resource)
        for rule in listener_rules()
        for resource in rule["resources"]
        for verb in rule["verbs"]
        if resource not in ("leases", "configmaps")
    }
    assert used == granted

    listener = control_plane.client(control_plane.listener_token)
    ns = f"/api/v1/namespaces/{namespace}"
    pod = f"{ns}/pods/{b.runner_name}"
    refused = [
        ("GET", pod, None),  # no get: the registry is the list and the watch
        ("GET", f"{ns}/secrets/{b.runner_name}-jit", None),  # JIT configs are write-only
        ("PATCH", pod, {"metadata": {"labels": {"x": "y"}}}),
        ("PATCH", f"{pod}/status", {"status": {"phase": "Succeeded"}}),
        ("POST", f"{pod}/eviction", {"apiVersion": "policy/v1", "kind": "Eviction"}),
        ("GET", "/api/v1/namespaces/default/pods", None),  # other namespaces
        ("GET", "/api/v1/pods", None),
        ("GET", "/api/v1/nodes", None),
        ("DELETE", f"{ns}/configmaps/x", None),  # profiles are kept, never deleted
        ("POST", f"{ns}/serviceaccounts/default/token", {"spec": {}}),
        (
            "DELETE",
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles/listener",
            None,
        ),
    ]
    try:
        for method, path, body in refused:
            with pytest.raises(KubeError) as denied:
                listener.request(
                    method,
                    path,
                    body,
                    content_type="application/merge-patch+json"
                    if method == "PATCH"
                    else "application/json",
                )
            assert (denied.value.status, denied.value.reason) == (403, "Forbidden"), path
    finally:
        listener.close()


async def test_reconciliation_lists_orphans_by_label_with_paging(
    make_runtime: Any, admin: KubeRest, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = make_runtime()
    await runtime.launch(specs(5))
    await runtime.launch(specs(2, scale_set_id=8, prefix="other"))
    labels = {"gha-scaleset/id": "7", "gha-scaleset/runner-name": "orphan"}
    admin.create(f"/api/v1/namespaces/{namespace}/pods", _foreign_pod("orphan", labels))
    monkeypatch.setattr(k8s_module, "_PAGE", 2)

    listed = await runtime.list_runners(7)

    assert {(r.runner_name, r.provider_id) for r in listed} == {
        *((s.runner_name, s.runner_name) for s in specs(5)),
        ("orphan", "orphan"),
    }
    assert all(r.phase is RunnerPhase.PENDING and r.scale_set_id == 7 for r in listed)
    # 6 of 8 pods in pages of 2: the server filters labels after paging, so a page may be
    # short and the last one empty; every page is followed by its opaque continue token.
    assert runtime.api_calls["k8s:ListPods"] >= 3
    # What reconciliation reports unknown, the listener stops: the orphan goes.
    await runtime.terminate(["orphan"])
    assert "orphan" not in _pods(admin, namespace)
    assert runtime.terminate_errors == {}
