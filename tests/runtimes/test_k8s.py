"""The Kubernetes runtime against the local fake API server (tests/fixtures/k8s.py).

The fake speaks the real wire format over HTTP to the real client (kubernetes_asyncio), but
it is not Kubernetes: nothing schedules or runs pods (the tests play the kubelet with
``set_pod_phase``), there is no admission, quota or RBAC (refusals are injected with
``fail_next``), strategic-merge patches are applied as JSON merge patches, deletion is
immediate and owner-reference garbage collection is emulated synchronously. What these tests
show is the runtime's side of the contract: the objects it creates, the calls it makes and
how it reads the watch; not that a cluster would run the pods.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from gha_scalesets.listener.config import K8sRuntimeConfig
from gha_scalesets.listener.runtimes import k8s as k8s_module
from gha_scalesets.listener.runtimes.base import RunnerPhase
from gha_scalesets.listener.runtimes.k8s import dns_label
from tests.support.k8s_objects import check_runner_objects, oom_killed
from tests.support.runtimes import (
    K8S_NAMESPACE,
    jit_config,
    specs,
    take,
)

NS = K8S_NAMESPACE


def _pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    """A pod made by someone else (a crashed listener, a person)."""
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "runner", "image": "runner"}]},
    }


async def test_burst_creates_pods_with_owned_secrets(make_k8s_runtime: Any, k8s_api: Any) -> None:
    runtime = make_k8s_runtime()
    fake = k8s_api.state
    burst = specs(15)

    results = await runtime.launch(burst)

    assert [r.provider_id for r in results] == [s.runner_name for s in burst]
    assert fake.names("pods", NS) == {s.runner_name for s in burst}
    for spec in burst:
        pod = fake.get("pods", NS, spec.runner_name)
        secret = fake.get("secrets", NS, f"{spec.runner_name}-jit")
        check_runner_objects(pod, secret, spec)
        assert pod["metadata"]["name"] == spec.runner_name
        assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
        assert pod["spec"]["tolerations"][0]["key"] == "runners"
        [container] = pod["spec"]["containers"]
        assert container["resources"] == {"requests": {"cpu": "1", "memory": "2Gi"}}
        assert (
            secret["data"]["jitconfig"]
            == base64.b64encode(jit_config(spec.runner_name).encode()).decode()
        )
    assert runtime.api_calls == {
        "k8s:CreateSecret": 15,
        "k8s:CreatePod": 15,
        "k8s:PatchSecret": 15,
    }
    assert fake.requests == {"create secrets": 15, "create pods": 15, "patch secrets": 15}

    # Terminate: the Pod goes, and the garbage collector takes its Secret along.
    await runtime.terminate([burst[0].runner_name])
    assert burst[0].runner_name not in fake.names("pods", NS)
    assert f"{burst[0].runner_name}-jit" not in fake.names("secrets", NS)
    assert len(fake.names("secrets", NS)) == 14
    assert runtime.terminate_errors == {}


async def test_runner_pods_get_the_proxy_secret_and_the_ca(
    make_k8s_runtime: Any, k8s_api: Any
) -> None:
    runtime = make_k8s_runtime(proxy_secret="listener-proxy", ca_config_map="listener-ca")
    [spec] = specs(1)
    await runtime.launch([spec])
    pod = k8s_api.state.get("pods", NS, spec.runner_name)
    [container] = pod["spec"]["containers"]
    # proxy variables by reference (a proxy URL may hold credentials), the CA as files
    assert container["envFrom"] == [{"secretRef": {"name": "listener-proxy"}}]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SSL_CERT_FILE"] == "/etc/gha-scalesets/ca/bundle.pem"
    assert env["NODE_EXTRA_CA_CERTS"] == "/etc/gha-scalesets/ca/ca.pem"
    assert container["volumeMounts"] == [
        {"name": "github-ca", "mountPath": "/etc/gha-scalesets/ca", "readOnly": True}
    ]
    assert pod["spec"]["volumes"] == [{"name": "github-ca", "configMap": {"name": "listener-ca"}}]


@pytest.mark.parametrize("token", [False, True], ids=["default", "opted-in"])
async def test_runner_pods_get_an_api_token_only_when_asked(
    token: bool, make_k8s_runtime: Any, k8s_api: Any
) -> None:
    runtime = make_k8s_runtime(service_account="ci-runner", automount_service_account_token=token)

    [result] = await runtime.launch(specs(1))

    spec = k8s_api.state.get("pods", NS, result.provider_id)["spec"]
    assert spec["serviceAccountName"] == "ci-runner"
    assert spec["automountServiceAccountToken"] is token


async def test_a_kubeconfig_file_gives_server_and_credentials(
    make_k8s_runtime: Any, k8s_api: Any, tmp_path: Path, secret_input: Callable[[Path], Path]
) -> None:
    kubeconfig = secret_input(tmp_path / "kubeconfig")
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": k8s_api.url}}],
                "users": [{"name": "u", "user": {"token": "kubeconfig-token"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    runtime = make_k8s_runtime(api_url=None, kubeconfig=kubeconfig)

    [result] = await runtime.launch(specs(1))

    assert result.provider_id in k8s_api.state.names("pods", NS)
    assert k8s_api.state.authorizations == {"Bearer kubeconfig-token"}


def test_kubeconfig_and_api_url_exclude_each_other() -> None:
    with pytest.raises(ValidationError, match="at most one of kubeconfig and api_url"):
        K8sRuntimeConfig(namespace=NS, kubeconfig="k", api_url="http://127.0.0.1:1")


async def test_watch_names_oom_kills_and_survives_dropped_watches(
    make_k8s_runtime: Any, k8s_api: Any
) -> None:
    runtime = make_k8s_runtime()
    fake = k8s_api.state
    stream = runtime.events()
    a, b, c = specs(3)
    await runtime.launch([a, b, c])
    await take(stream, 3)  # pending

    fake.set_pod_phase(NS, a.runner_name, "Succeeded")
    fake.set_pod_phase(NS, a.runner_name, "Succeeded")  # a repeat is not news
    fake.set_pod_phase(NS, b.runner_name, "Failed", containerStatuses=oom_killed("x"))
    done, crashed = await take(stream, 2)
    assert (done.provider_id, done.phase) == (a.runner_name, RunnerPhase.STOPPED)
    assert (crashed.phase, crashed.reason) == (RunnerPhase.FAILED, "OOMKilled (exit 137)")

    # The API server drops the watch; while it is away a pod is deleted and the history
    # compacted. The runtime's resumed watch gets 410, it lists again and reports the pod
    # that vanished; pods it already reported are not reported twice.
    fake.drop_watches(hold=True)
    await runtime.terminate([a.runner_name, c.runner_name])  # a ended already; c was pending
    fake.compact()
    fake.release_watches()
    [deleted] = await take(stream, 1)
    assert (deleted.provider_id, deleted.phase, deleted.reason) == (
        c.runner_name,
        RunnerPhase.STOPPED,
        "pod deleted",
    )
    assert fake.requests["list pods"] == 2  # the first list, the relist after 410
    assert runtime.api_calls["k8s:ListPods"] == 2
    assert runtime.api_calls["k8s:WatchPods"] >= 2


async def test_reconciliation_lists_by_label_and_sweeps_unowned_secrets(
    make_k8s_runtime: Any, k8s_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = k8s_api.state
    runtime = make_k8s_runtime(clock=lambda: time.time() + 3600)
    await runtime.launch(specs(5))
    await runtime.launch(specs(2, scale_set_id=8, prefix="other"))
    labels = {"gha-scaleset/id": "7", "gha-scaleset/runner-name": "orphan"}
    fake.put("pods", NS, _pod("orphan", labels))
    # A Secret whose owner reference was never set and whose pod never came.
    stray = {"gha-scaleset/id": "7", "gha-scaleset/runner-name": "gone"}
    fake.put("secrets", NS, {"metadata": {"name": "gone-jit", "labels": stray}, "data": {}})
    monkeypatch.setattr(k8s_module, "_PAGE", 2)
    # Right now the stray Secret may still belong to a launch in flight: it stays.
    await make_k8s_runtime().list_runners(7)
    assert "gone-jit" in fake.names("secrets", NS)

    listed = await runtime.list_runners(7)  # an hour later

    assert {(r.runner_name, r.provider_id) for r in listed} == {
        *((s.runner_name, s.runner_name) for s in specs(5)),
        ("orphan", "orphan"),
    }
    assert all(r.phase is RunnerPhase.PENDING and r.scale_set_id == 7 for r in listed)
    assert runtime.api_calls["k8s:ListPods"] == 3  # 6 pods, pages of 2
    assert "gone-jit" not in fake.names("secrets", NS)
    assert len(fake.names("secrets", NS)) == 7  # every owned Secret stays


async def test_launch_errors(make_k8s_runtime: Any, k8s_api: Any, backoffs: Any) -> None:
    fake = k8s_api.state
    runtime = make_k8s_runtime()

    fake.fail_next("create", "secrets", 500)
    [retried] = await runtime.launch(specs(1))
    assert retried.provider_id and len(backoffs.delays) == 1
    assert runtime.launch_errors == {"500:InternalError": 1}

    fake.fail_next(
        "create", "pods", 403, 'pods "x" is forbidden: exceeded quota: runners, requested: cpu=1'
    )
    [quota] = await runtime.launch(specs(1, start=1))
    assert quota.provider_id is None and quota.retryable
    assert "exceeded quota" in quota.error
    assert "linux-x64-00001-jit" not in fake.names("secrets", NS)  # no Secret left behind

    fake.put("pods", NS, _pod("linux-x64-00002", {}))
    [taken] = await runtime.launch(specs(1, start=2))
    assert taken.provider_id is None and not taken.retryable
    assert "409:AlreadyExists" in taken.error

    # The owner reference fails: the runner still runs; terminate removes the Secret itself.
    fake.fail_next("patch", "secrets", 403, "forbidden", reason="Forbidden")
    [unowned] = await runtime.launch(specs(1, start=3))
    assert unowned.provider_id
    assert not fake.get("secrets", NS, "linux-x64-00003-jit")["metadata"].get("ownerReferences")
    await runtime.terminate([unowned.provider_id])
    assert "linux-x64-00003-jit" not in fake.names("secrets", NS)


@pytest.mark.parametrize(
    ("runner", "expected"),
    [
        ("linux-x64-00001", "linux-x64-00001"),
        ("Linux_X64.big", "linux-x64-big-"),
        ("a" * 80, "a" * 54 + "-"),
    ],
)
def test_dns_label(runner: str, expected: str) -> None:
    label = dns_label(runner)
    assert label.startswith(expected)
    assert len(label) <= 63
    assert all(ch.isalnum() or ch == "-" for ch in label) and label == label.lower()
