"""Runners as Pods in one namespace; the API server itself is the runner registry.

Per runner: a Secret holding the JIT config, a Pod (``restartPolicy: Never``, non-root) whose
container gets it through ``secretKeyRef`` (the pod spec names the Secret, never the value),
then an owner reference from the Secret to the Pod so Kubernetes deletes the Secret with the
Pod. Pods carry the labels ``gha-scaleset/id`` and ``gha-scaleset/runner-name`` and the exact
runner name as an annotation. State changes come from one watch on the label (after one
list); listing by label is for reconciliation only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
import structlog
from kubernetes_asyncio import client
from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.watch import Watch

from gha_scalesets.contract.names import (
    ANNOTATION_RUNNER_NAME,
    JIT_CONFIG_ENV,
    LABEL_RUNNER_NAME,
    LABEL_SCALE_SET_ID,
    RUNNER_CA_DIR,
)
from gha_scalesets.contract.network import ca_environment
from gha_scalesets.listener.config import K8sRuntimeConfig
from gha_scalesets.listener.retries import default_retry, with_retries
from gha_scalesets.listener.runtimes._launch import for_each, launch_all
from gha_scalesets.listener.runtimes._phases import PhaseTracker
from gha_scalesets.listener.runtimes.base import (
    LaunchResult,
    RunnerPhase,
    RunnerSpec,
    RuntimeEvent,
    RuntimeRunner,
    sweep_cutoff,
)
from gha_scalesets.scaleset.retry import RetryPolicy

log = structlog.get_logger(__name__)

JIT_FIELD = "jitconfig"  # the data key in the runner Secret
CONTAINER_NAME = "runner"

_POD_PHASES = {
    "Pending": RunnerPhase.PENDING,
    "Running": RunnerPhase.RUNNING,
    "Succeeded": RunnerPhase.STOPPED,
    "Failed": RunnerPhase.FAILED,
}
_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
_PAGE = 500
_Errors = (ApiException, aiohttp.ClientError, TimeoutError)


async def api_client(config: K8sRuntimeConfig) -> client.ApiClient:
    """An API client for ``config.kubeconfig``, else ``config.api_url``, else in-cluster, else
    the ambient kubeconfig."""
    configuration = client.Configuration()
    if config.kubeconfig is not None:
        await kube_config.load_kube_config(
            config_file=str(config.kubeconfig), client_configuration=configuration
        )
    elif config.api_url:
        configuration.host = config.api_url
    elif "KUBERNETES_SERVICE_HOST" in os.environ:
        kube_config.load_incluster_config(client_configuration=configuration)
    else:
        await kube_config.load_kube_config(client_configuration=configuration)
    return client.ApiClient(configuration)


def dns_label(runner_name: str) -> str:
    """A DNS-1123 label for a runner name (Pod name, label value): lowercase letters, digits
    and '-', at most 63 characters; names that needed changes get a hash suffix."""
    name = re.sub(r"[^a-z0-9-]+", "-", runner_name.lower()).strip("-")
    if name == runner_name and len(name) <= 63:
        return name
    digest = hashlib.sha256(runner_name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-')}-{digest}".lstrip("-")


def _error_code(exc: BaseException) -> str:
    if not isinstance(exc, ApiException):
        return "ConnectionError"
    try:
        reason = json.loads(exc.body or "{}").get("reason") or exc.reason
    except (TypeError, ValueError):
        reason = exc.reason
    return f"{exc.status}:{reason}"


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        try:
            message = json.loads(exc.body or "{}").get("message", "")
        except (TypeError, ValueError):
            message = ""
        return f"{_error_code(exc)} {message}".strip()[:300]
    return _error_code(exc)


def _retryable(exc: BaseException) -> bool:
    if not isinstance(exc, ApiException):
        return True
    if exc.status in _TRANSIENT_STATUS:
        return True
    # A full ResourceQuota frees up as runners finish; RBAC denials and conflicts do not.
    return exc.status == 403 and "exceeded quota" in _error_text(exc)


class K8sRuntime:
    """Runners as Pods; see the module docstring for the life of one runner.

    ``api_calls`` counts API requests as ``k8s:<Verb><Kind>`` (``k8s:CreatePod``,
    ``k8s:ListPods``, ``k8s:WatchPods``, ...); ``launch_errors`` counts failed launch requests
    by ``<status>:<reason>``.
    """

    name = "k8s"

    def __init__(
        self,
        config: K8sRuntimeConfig,
        *,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_calls: Counter[str] = Counter()
        self.launch_errors: Counter[str] = Counter()
        self.terminate_errors: Counter[str] = Counter()
        self._config = config
        self._namespace = config.namespace
        self._retry = retry or default_retry()
        self._clock = clock
        self._api: client.ApiClient | None = None
        self._core: client.CoreV1Api | None = None
        self._init_lock = asyncio.Lock()
        self._closed = asyncio.Event()
        self._pumps: set[asyncio.Task[None]] = set()
        self._tracker = PhaseTracker()
        self._unowned: set[str] = set()  # Secrets whose owner reference could not be set
        # Pods the watch last saw pending or running: (runner name, scale set id).
        self._live: dict[str, tuple[str | None, int | None]] = {}

    async def _client(self) -> client.CoreV1Api:
        async with self._init_lock:
            if self._core is None:
                self._api = await api_client(self._config)
                self._core = client.CoreV1Api(self._api)
            return self._core

    async def _call(
        self,
        operation: str,
        request: Callable[..., Awaitable[Any]],
        *args: Any,
        errors: Counter[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """One API request counted as ``k8s:<operation>``; 429/5xx and connection errors
        are retried with full-jitter backoff."""

        async def send() -> Any:
            self.api_calls[f"k8s:{operation}"] += 1
            return await request(*args, **kwargs)

        def count(exc: BaseException) -> None:
            if errors is not None:
                errors[_error_code(exc)] += 1

        return await with_retries(
            send,
            self._retry,
            failures=_Errors,
            transient=lambda exc: (
                not isinstance(exc, ApiException) or exc.status in _TRANSIENT_STATUS
            ),
            on_failure=count,
        )

    # -- launch ------------------------------------------------------------------------------
    async def launch(self, runners: Sequence[RunnerSpec]) -> list[LaunchResult]:
        """A Secret, a Pod and the Secret's owner reference per runner."""
        return await launch_all(
            runners,
            self._config.launch_concurrency,
            lambda _index, spec: self._launch_one(spec),
            self.launch_errors,
        )

    async def _launch_one(self, spec: RunnerSpec) -> LaunchResult:
        core = await self._client()
        pod_name = dns_label(spec.runner_name)
        secret_name = f"{pod_name}-jit"
        labels = {
            LABEL_SCALE_SET_ID: str(spec.scale_set_id),
            LABEL_RUNNER_NAME: pod_name,
            "app.kubernetes.io/managed-by": "gha-scalesets",
        }
        annotations = {ANNOTATION_RUNNER_NAME: spec.runner_name}
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": secret_name, "labels": labels, "annotations": annotations},
            "data": {JIT_FIELD: base64.b64encode(spec.jit_config.encode()).decode()},
        }
        ns = self._namespace
        try:
            await self._call(
                "CreateSecret", core.create_namespaced_secret, ns, secret, errors=self.launch_errors
            )
        except _Errors as exc:
            # The code only: a validation message may quote the value.
            return self._failed(spec, "could not create the JIT config Secret", exc, detail=False)
        pod_body = self._pod(pod_name, secret_name, labels, annotations)
        try:
            pod = await self._call(
                "CreatePod", core.create_namespaced_pod, ns, pod_body, errors=self.launch_errors
            )
        except _Errors as exc:
            await self._delete("DeleteSecret", core.delete_namespaced_secret, secret_name)
            return self._failed(spec, "could not create the runner Pod", exc)
        owner = {"apiVersion": "v1", "kind": "Pod", "name": pod_name, "uid": pod.metadata.uid}
        try:
            await self._call(
                "PatchSecret",
                core.patch_namespaced_secret,
                secret_name,
                ns,
                {"metadata": {"ownerReferences": [owner]}},
                errors=self.launch_errors,
            )
        except _Errors as exc:
            # The runner works; only the Secret's cleanup falls to terminate/reconciliation.
            self._unowned.add(secret_name)
            log.warning(
                "could not make the pod own its JIT secret",
                runner=spec.runner_name,
                error=_error_code(exc),
            )
        return LaunchResult(spec.runner_name, provider_id=pod_name)

    def _failed(
        self, spec: RunnerSpec, what: str, exc: BaseException, *, detail: bool = True
    ) -> LaunchResult:
        log.warning("launch request failed", runner=spec.runner_name, error=_error_code(exc))
        text = _error_text(exc) if detail else _error_code(exc)
        return LaunchResult(spec.runner_name, error=f"{what}: {text}", retryable=_retryable(exc))

    def _pod(
        self,
        name: str,
        secret_name: str,
        labels: dict[str, str],
        annotations: dict[str, str],
    ) -> dict[str, Any]:
        cfg = self._config
        container: dict[str, Any] = {
            "name": CONTAINER_NAME,
            "image": cfg.image,
            "command": cfg.command,
            "env": [
                {
                    "name": JIT_CONFIG_ENV,
                    "valueFrom": {"secretKeyRef": {"name": secret_name, "key": JIT_FIELD}},
                }
            ],
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "runAsNonRoot": True,
            },
        }
        if cfg.resources:
            container["resources"] = cfg.resources
        if cfg.proxy_secret:
            container["envFrom"] = [{"secretRef": {"name": cfg.proxy_secret}}]
        volumes: list[dict[str, Any]] = []
        if cfg.ca_config_map:
            container["env"] += [
                {"name": k, "value": v} for k, v in ca_environment(RUNNER_CA_DIR).items()
            ]
            container["volumeMounts"] = [
                {"name": "github-ca", "mountPath": RUNNER_CA_DIR, "readOnly": True}
            ]
            volumes.append({"name": "github-ca", "configMap": {"name": cfg.ca_config_map}})
        spec: dict[str, Any] = {
            "restartPolicy": "Never",
            # At pod level: it overrides whatever the service account says.
            "automountServiceAccountToken": cfg.automount_service_account_token,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": cfg.run_as_user,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
        }
        if volumes:
            spec["volumes"] = volumes
        if cfg.service_account:
            spec["serviceAccountName"] = cfg.service_account
        if cfg.node_selector:
            spec["nodeSelector"] = cfg.node_selector
        if cfg.tolerations:
            spec["tolerations"] = cfg.tolerations
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "spec": spec,
        }

    # -- terminate ---------------------------------------------------------------------------
    async def terminate(self, provider_ids: Sequence[str]) -> None:
        """Delete Pods (their Secrets go with them); unknown Pods are fine.

        Failures are logged and counted in ``terminate_errors``: the next reconciliation
        lists a surviving Pod again.
        """
        core = await self._client()

        async def delete(name: str) -> None:
            await self._delete("DeletePod", core.delete_namespaced_pod, name)
            secret = f"{name}-jit"
            if secret in self._unowned:
                await self._delete("DeleteSecret", core.delete_namespaced_secret, secret)
                self._unowned.discard(secret)

        await for_each(dict.fromkeys(provider_ids), self._config.launch_concurrency, delete)

    async def _delete(self, operation: str, request: Callable[..., Any], name: str) -> None:
        try:
            await self._call(
                operation, request, name, self._namespace, propagation_policy="Background"
            )
        except _Errors as exc:
            if not (isinstance(exc, ApiException) and exc.status == 404):
                self.terminate_errors[_error_code(exc)] += 1
                log.warning(
                    "could not delete a Kubernetes object",
                    operation=operation,
                    name=name,
                    error=_error_code(exc),
                )

    # -- reconciliation ----------------------------------------------------------------------
    async def list_runners(self, scale_set_id: int) -> list[RuntimeRunner]:
        """The scale set's Pods (label-selected, paginated). Also deletes JIT Secrets left
        without an owner whose Pod is gone."""
        core = await self._client()
        cutoff = sweep_cutoff(self._clock())
        selector = f"{LABEL_SCALE_SET_ID}={scale_set_id}"
        pods, _ = await self._list("ListPods", core.list_namespaced_pod, selector)
        runners = []
        for pod in pods:
            phase = _POD_PHASES.get(pod.status.phase if pod.status else "", RunnerPhase.PENDING)
            annotations = pod.metadata.annotations or {}
            runner_name = annotations.get(ANNOTATION_RUNNER_NAME, pod.metadata.name)
            runners.append(RuntimeRunner(runner_name, pod.metadata.name, scale_set_id, phase))
        secrets, _ = await self._list("ListSecrets", core.list_namespaced_secret, selector)
        live = {r.provider_id for r in runners}
        for secret in secrets:
            meta = secret.metadata
            pod_name = (meta.labels or {}).get(LABEL_RUNNER_NAME)
            orphaned = not meta.owner_references and pod_name not in live
            if orphaned and meta.creation_timestamp and meta.creation_timestamp < cutoff:
                await self._delete("DeleteSecret", core.delete_namespaced_secret, meta.name)
                self._unowned.discard(meta.name)
        return runners

    async def _list(
        self, operation: str, request: Callable[..., Any], selector: str
    ) -> tuple[list[Any], str]:
        items: list[Any] = []
        token: str | None = None
        while True:
            more: dict[str, Any] = {"_continue": token} if token else {}
            page = await self._call(
                operation,
                request,
                self._namespace,
                label_selector=selector,
                limit=_PAGE,
                **more,
            )
            items.extend(page.items)
            token = page.metadata._continue
            if not token:
                return items, page.metadata.resource_version

    # -- events ------------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[RuntimeEvent]:
        """Pod phase changes from one list and a watch, resumed from the last resource
        version (relisting only when the server has forgotten it)."""
        if self._closed.is_set():
            return
        queue: asyncio.Queue[RuntimeEvent | None] = asyncio.Queue()
        pump = asyncio.create_task(self._pump(queue.put_nowait))
        self._pumps.add(pump)

        def ended(task: asyncio.Task[None]) -> None:
            queue.put_nowait(None)
            if not task.cancelled() and task.exception() is not None:
                # Only setup can get here (loading the kubeconfig); the watch loop retries.
                log.error("pod watch stopped", error=type(task.exception()).__name__)

        pump.add_done_callback(ended)
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            pump.cancel()
            self._pumps.discard(pump)

    async def _pump(self, emit: Callable[[RuntimeEvent], None]) -> None:
        core = await self._client()
        resource_version: str | None = None
        failures = 0
        while True:
            try:
                if resource_version is None:
                    pods, resource_version = await self._list(
                        "ListPods", core.list_namespaced_pod, LABEL_SCALE_SET_ID
                    )
                    self._emit_vanished(emit, {pod.metadata.name for pod in pods})
                    for pod in pods:
                        self._emit(emit, pod, deleted=False)
                self.api_calls["k8s:WatchPods"] += 1
                watch = Watch()
                async with watch.stream(
                    core.list_namespaced_pod,
                    self._namespace,
                    label_selector=LABEL_SCALE_SET_ID,
                    resource_version=resource_version,
                    timeout_seconds=self._config.watch_timeout_seconds,
                    allow_watch_bookmarks=True,
                ) as stream:
                    async for item in stream:
                        if item["type"] in ("ADDED", "MODIFIED", "DELETED"):
                            self._emit(emit, item["object"], deleted=item["type"] == "DELETED")
                        resource_version = watch.resource_version or resource_version
                failures = 0
            except _Errors as exc:
                if isinstance(exc, ApiException) and exc.status == 410:
                    resource_version = None  # history compacted: list again
                    continue
                failures += 1
                log.warning("pod watch failed", error=_error_code(exc), failures=failures)
                await self._retry.sleep(self._retry.backoff(min(failures, 10)))

    def _emit_vanished(self, emit: Callable[[RuntimeEvent], None], listed: set[str]) -> None:
        """After a relist: Pods seen alive before that the list no longer has were deleted
        while no watch was open (their DELETED events are lost)."""
        for name, (runner_name, scale_set_id) in list(self._live.items()):
            if name not in listed:
                del self._live[name]
                if self._tracker.advance(name, RunnerPhase.STOPPED):
                    emit(
                        RuntimeEvent(
                            name, RunnerPhase.STOPPED, runner_name, scale_set_id, "pod deleted"
                        )
                    )

    def _emit(self, emit: Callable[[RuntimeEvent], None], pod: Any, *, deleted: bool) -> None:
        meta, status = pod.metadata, pod.status
        phase = _POD_PHASES.get(status.phase if status else "")
        reason = status.reason if status else None
        if deleted and phase not in (RunnerPhase.STOPPED, RunnerPhase.FAILED):
            phase, reason = RunnerPhase.STOPPED, "pod deleted"
        if phase is None:
            return
        scale_set = (meta.labels or {}).get(LABEL_SCALE_SET_ID, "")
        scale_set_id = int(scale_set) if scale_set.isdigit() else None
        runner_name = (meta.annotations or {}).get(ANNOTATION_RUNNER_NAME)
        if phase in (RunnerPhase.PENDING, RunnerPhase.RUNNING):
            self._live[meta.name] = (runner_name, scale_set_id)
        else:
            self._live.pop(meta.name, None)
        if not self._tracker.advance(meta.name, phase):
            return
        if phase is RunnerPhase.FAILED and not reason:
            reason = _termination(status)
        emit(RuntimeEvent(meta.name, phase, runner_name, scale_set_id, reason))

    async def close(self) -> None:
        """End ``events()`` and close the HTTP session."""
        self._closed.set()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        if self._api is not None:
            await self._api.close()


def _termination(status: Any) -> str | None:
    """Why the runner container ended (e.g. ``OOMKilled (exit 137)``), when it did."""
    for container in status.container_statuses or []:
        terminated = container.state.terminated if container.state else None
        if container.name == CONTAINER_NAME and terminated:
            return f"{terminated.reason or 'terminated'} (exit {terminated.exit_code})"
    return None


if TYPE_CHECKING:
    from gha_scalesets.listener.runtimes.base import Runtime

    def _satisfies_runtime(runtime: K8sRuntime) -> Runtime:
        """Never called: mypy checks here that K8sRuntime has all the Runtime protocol asks."""
        return runtime
