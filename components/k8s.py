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

from gha_scalesets.components.args import K8sOptions, ScaleSetListenerArgs
from gha_scalesets.components.deployment import Deployment
from gha_scalesets.components.k8s_network import k8s_network
from gha_scalesets.components.k8s_secret import K8S_SECRET_MOUNT, k8s_credential
from gha_scalesets.components.naming import ListenerNames
from gha_scalesets.components.network import LISTENER_CA_FILE
from gha_scalesets.components.prometheus import RULES_FILE, alert_rules, rules_file
from gha_scalesets.components.settings import resolve_env, setting_variable
from gha_scalesets.contract.names import RUNNER_CA_DIR

LISTENER_UID = 10001  # the Dockerfile's user
_TMP = "tmp"
_CREDENTIAL = "github-credential"
_CA = "github-ca"


def listener_rules() -> list[dict[str, Any]]:
    """The listener's Role: runner pods and their JIT-config secrets, in its namespace only
    (secrets: ``patch`` sets a runner's pod as the owner of its secret), the ConfigMaps that
    keep what the adaptive warm capacity learned (read, created once, patched), and the Leases
    that say which replica is active (read, created once, renewed by replace; listed by
    standbys) and which replicas are alive (a member Lease each: listed, deleted once stale)."""
    return [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete", "list", "watch"]},
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["create", "delete", "list", "patch"],
        },
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "patch"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "list", "create", "update", "delete"],
        },
    ]


def runner_settings(options: K8sOptions, namespace: str, service_account: str) -> dict[str, Any]:
    """The listener's ``k8s`` runtime section: the runner pod template (in-cluster config)."""
    return {
        "namespace": namespace,
        "image": options.runner_image,
        "service_account": service_account,
        # The account's own automount=false is overridden by a pod-level true: say it here.
        "automount_service_account_token": options.runner_service_account_token,
        "resources": {k: dict(r) for k, r in options.runner_resources.items()},
        "node_selector": dict(options.node_selector),
        "tolerations": [dict(t) for t in options.tolerations],
    }


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
    proxy_secret: str | None = None,
    no_proxy: str = "",
    ca_config_map: str | None = None,
) -> dict[str, Any]:
    """Non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp.

    ``proxy_secret`` holds the proxy variables (``envFrom``); ``ca_config_map`` the private CA,
    mounted where ``LISTENER_CA_BUNDLE`` points.
    """
    if ca_config_map:
        env = env | {setting_variable("ca_bundle"): LISTENER_CA_FILE}
    if proxy_secret:
        # The Kubernetes client honours the proxy variables too, and reaches the API server by
        # the address in KUBERNETES_SERVICE_HOST: the kubelet expands $(...) here, and a plain
        # variable wins over the Secret's.
        exempt = f"$(KUBERNETES_SERVICE_HOST),{no_proxy}"
        env = env | {"NO_PROXY": exempt, "no_proxy": exempt}
    spec: dict[str, Any] = {
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
    [container] = spec["containers"]
    if proxy_secret:
        container["envFrom"] = [{"secretRef": {"name": proxy_secret}}]
    if ca_config_map:
        container["volumeMounts"].append(
            {"name": _CA, "mountPath": RUNNER_CA_DIR, "readOnly": True}
        )
        spec["volumes"].append({"name": _CA, "configMap": {"name": ca_config_map}})
    return spec


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
    network = k8s_network(args, names, metadata, opts)
    listener_account = k8s.core.v1.ServiceAccount(
        names.child("listener"), metadata=metadata("listener"), opts=opts
    )
    runner_account = k8s.core.v1.ServiceAccount(
        names.child("runner"),
        metadata=metadata("runner"),
        # Jobs get no Kubernetes API credentials unless runner_service_account_token asks.
        automount_service_account_token=False,
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
    runner_template = pulumi.Output.all(
        namespace, runner_account.metadata.name, network.proxy_secret, network.ca_config_map
    ).apply(
        lambda v: (
            runner_settings(options, v[0], v[1])
            | ({"proxy_secret": v[2]} if v[2] else {})
            | ({"ca_config_map": v[3]} if v[3] else {})
        )
    )
    env = resolve_env(
        github_config_url=args.github_config_url,
        runtime="k8s",
        credentials=credential.listener_credentials,
        scale_sets=scale_sets,
        runtime_config=runner_template,
        metrics_port=args.metrics_port,
        pacing=args.pacing.listener_setting(),
    )
    selector = {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}
    pod_spec = pulumi.Output.all(
        env,
        listener_account.metadata.name,
        credential.secret.metadata.name,
        network.proxy_secret,
        network.ca_config_map,
    ).apply(
        lambda v: listener_pod_spec(
            image=args.listener_image,
            env=v[0],
            service_account=v[1],
            credential_secret=v[2],
            metrics_port=args.metrics_port,
            resources={k: dict(r) for k, r in options.listener_resources.items()},
            proxy_secret=v[3],
            no_proxy=network.no_proxy,
            ca_config_map=v[4],
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
    k8s.core.v1.Service(
        names.child("metrics"),
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
                alert_rules(
                    namespace_name,
                    names.child("listener"),  # the Deployment's name, set in its metadata
                    names.listener_id,
                    args.alarm_thresholds,
                )
            )
        },
        opts=opts,
    )
    return Deployment(
        listener_id=pulumi.Output.concat(namespace, "/", deployment.metadata.name),
        secret_name=credential.secret.metadata.name,
        alert_rules=rules.metadata.name,
    )
