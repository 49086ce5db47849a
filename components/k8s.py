"""Kubernetes runtime: the listener as a Deployment (``replicas`` pods on different nodes when
possible, a PodDisruptionBudget, rolling updates; one active per scale set through a
``coordination.k8s.io`` Lease), runners as Pods in one namespace.

On Kubernetes the API server is the runner registry (labels + one watch), so there is no table
or queue; alerting is a Prometheus rule file in a ConfigMap.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.args import ScaleSetListenerArgs
from components.deployment import Deployment
from components.naming import ListenerNames
from components.prometheus import RULES_FILE, alert_rules, rules_file
from components.secrets import K8S_SECRET_MOUNT, k8s_credential
from components.settings import resolve_env

LISTENER_UID = 10001  # the Dockerfile's user
_TMP = "tmp"
_CREDENTIAL = "github-credential"


def listener_rules() -> list[dict[str, Any]]:
    """The listener's Role: runner pods and their JIT-config secrets, in its namespace only
    (secrets: ``patch`` sets a runner's pod as the owner of its secret), and the Leases that
    say which replica is active (read, created once, renewed by replace)."""
    return [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete", "list", "watch"]},
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["create", "delete", "list", "patch"],
        },
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        },
    ]


def spread(selector: dict[str, str]) -> dict[str, Any]:
    """Prefer replicas on different nodes (preferred, not required: a one-node cluster still
    runs them all)."""
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": selector},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        }
    }


def listener_pod_spec(
    *,
    image: str,
    env: dict[str, str],
    service_account: str,
    credential_secret: str,
    metrics_port: int,
    resources: dict[str, Any],
    affinity: dict[str, Any],
) -> dict[str, Any]:
    """Non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp."""
    return {
        "serviceAccountName": service_account,
        "affinity": affinity,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": LISTENER_UID,
            "runAsGroup": LISTENER_UID,
            "fsGroup": LISTENER_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "listener",
                "image": image,
                "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
                "ports": [{"name": "metrics", "containerPort": metrics_port, "protocol": "TCP"}],
                "resources": resources,
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "livenessProbe": {
                    "tcpSocket": {"port": "metrics"},
                    "initialDelaySeconds": 10,
                    "periodSeconds": 20,
                },
                # Ready = serving its scale sets or a hot standby: a rolling update stops the
                # old pod only once its replacement can take over.
                "readinessProbe": {
                    "httpGet": {"path": "/readyz", "port": "metrics"},
                    "periodSeconds": 5,
                },
                "volumeMounts": [
                    {"name": _CREDENTIAL, "mountPath": K8S_SECRET_MOUNT, "readOnly": True},
                    {"name": _TMP, "mountPath": "/tmp"},  # noqa: S108 (a private emptyDir)
                ],
            }
        ],
        "volumes": [
            # Group-readable only: the files belong to root with fsGroup as their group.
            {
                "name": _CREDENTIAL,
                "secret": {"secretName": credential_secret, "defaultMode": 0o440},
            },
            {"name": _TMP, "emptyDir": {"sizeLimit": "64Mi"}},
        ],
    }


def deploy(
    names: ListenerNames,
    args: ScaleSetListenerArgs,
    namespace_name: str,
    scale_sets: pulumi.Output[list[dict[str, Any]]],
    opts: pulumi.ResourceOptions,
) -> Deployment:
    """Namespace (or existing), credential Secret, ServiceAccounts, Role/RoleBinding,
    listener Deployment, metrics Service and the alert-rules ConfigMap."""
    options = args.k8s
    labels = {
        "app.kubernetes.io/name": "gha-scalesets-listener",
        "app.kubernetes.io/instance": names.component,
        "app.kubernetes.io/managed-by": "pulumi",
    }
    namespace: pulumi.Input[str] = namespace_name
    if options.create_namespace:
        # Runner pods must pass "baseline"; everything of ours also passes "restricted".
        pod_security = {
            f"pod-security.kubernetes.io/{mode}": level
            for mode, level in (
                ("enforce", "baseline"),
                ("warn", "restricted"),
                ("audit", "restricted"),
            )
        }
        namespace = k8s.core.v1.Namespace(
            names.child("namespace"),
            metadata={"name": namespace_name, "labels": labels | pod_security},
            opts=opts,
        ).metadata.name

    def metadata(suffix: str) -> dict[str, Any]:
        return {"name": names.child(suffix), "namespace": namespace, "labels": labels}

    credential = k8s_credential(names, args, metadata("github"), opts)
    listener_account = k8s.core.v1.ServiceAccount(
        names.child("listener"), metadata=metadata("listener"), opts=opts
    )
    runner_account = k8s.core.v1.ServiceAccount(
        names.child("runner"),
        metadata=metadata("runner"),
        automount_service_account_token=False,  # jobs get no Kubernetes API credentials
        opts=opts,
    )
    role = k8s.rbac.v1.Role(
        names.child("listener"), metadata=metadata("listener"), rules=listener_rules(), opts=opts
    )
    k8s.rbac.v1.RoleBinding(
        names.child("listener"),
        metadata=metadata("listener"),
        role_ref={
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role.metadata.name,
        },
        subjects=[
            {
                "kind": "ServiceAccount",
                "name": listener_account.metadata.name,
                "namespace": namespace,
            }
        ],
        opts=opts,
    )
    runner_template = pulumi.Output.all(namespace, runner_account.metadata.name).apply(
        lambda v: {
            "namespace": v[0],
            "image": options.runner_image,
            "service_account": v[1],
            "resources": {k: dict(r) for k, r in options.runner_resources.items()},
            "node_selector": dict(options.node_selector),
            "tolerations": [dict(t) for t in options.tolerations],
        }
    )
    env = resolve_env(
        github_config_url=args.github_config_url,
        runtime="k8s",
        credentials=credential.listener_credentials,
        scale_sets=scale_sets,
        runtime_config=runner_template,
        metrics_port=args.metrics_port,
    )
    selector = {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}
    pod_spec = pulumi.Output.all(
        env, listener_account.metadata.name, credential.secret.metadata.name
    ).apply(
        lambda v: listener_pod_spec(
            image=args.listener_image,
            env=v[0],
            service_account=v[1],
            credential_secret=v[2],
            metrics_port=args.metrics_port,
            resources={k: dict(r) for k, r in options.listener_resources.items()},
            affinity=spread(selector),
        )
    )
    deployment = k8s.apps.v1.Deployment(
        names.child("listener"),
        metadata=metadata("listener"),
        spec={
            "replicas": args.replicas,
            # The new pod starts as a standby; the old one, stopped, releases its leases.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(args.metrics_port),
                    },
                },
                "spec": pod_spec,
            },
        },
        opts=opts,
    )
    k8s.policy.v1.PodDisruptionBudget(
        names.child("listener"),
        metadata=metadata("listener"),
        # Drains evict one listener at a time; a lone replica may still be evicted.
        spec={"maxUnavailable": 1, "selector": {"matchLabels": selector}},
        opts=opts,
    )
    service_name = names.child("metrics")
    k8s.core.v1.Service(
        service_name,
        metadata=metadata("metrics"),
        spec={
            "selector": selector,
            "ports": [{"name": "metrics", "port": args.metrics_port, "targetPort": "metrics"}],
        },
        opts=opts,
    )
    rules = k8s.core.v1.ConfigMap(
        names.child("alert-rules"),
        metadata=metadata("alert-rules"),
        data={
            RULES_FILE: rules_file(
                alert_rules(namespace_name, service_name, names.listener_id, args.alarm_thresholds)
            )
        },
        opts=opts,
    )
    return Deployment(
        listener_id=pulumi.Output.concat(namespace, "/", deployment.metadata.name),
        secret_name=credential.secret.metadata.name,
        alert_rules=rules.metadata.name,
    )
