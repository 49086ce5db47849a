"""The listener composed into a stack that already has a cluster provider and a namespace.

    pulumi config set --secret kubeconfig < cluster.kubeconfig
    pulumi config set githubConfigUrl https://github.com/acme
    pulumi config set --secret githubToken ghp_...
    pulumi up

The first part stands for what your stack already declares; the second is what you add. See
docs/components.md ("Use in an existing stack"); ``tests/examples/`` runs this file under mocks.
"""

import pulumi
import pulumi_kubernetes as k8s

from gha_scalesets import (
    K8sOptions,
    ListenerScaleSet,
    ScaleSet,
    ScaleSetArgs,
    ScaleSetListener,
    ScaleSetListenerArgs,
)

cfg = pulumi.Config()

# --- what the existing stack already has: a provider for the cluster and a namespace
cluster = k8s.Provider("cluster", kubeconfig=cfg.require_secret("kubeconfig"))
namespace = k8s.core.v1.Namespace(
    "ci",
    metadata={"name": "ci", "labels": {"pod-security.kubernetes.io/enforce": "baseline"}},
    opts=pulumi.ResourceOptions(provider=cluster),
)

# --- what you add: a scale set and the listener that serves it, in that namespace
token = cfg.require_secret("githubToken")
org = cfg.require("githubConfigUrl")  # org, owner/repo, or enterprises/<slug>

linux = ScaleSet("linux", ScaleSetArgs(github_config_url=org, name="linux-x64", github_token=token))

listener = ScaleSetListener(
    "ci",
    ScaleSetListenerArgs(
        runtime="k8s",
        github_config_url=org,
        github_token=token,
        scale_sets=[ListenerScaleSet(linux, max_runners=20)],
        listener_image="ghcr.io/acme/gha-scalesets-listener:0.1.0",
        k8s=K8sOptions(namespace="ci", provider=cluster, create_namespace=False),
    ),
    opts=pulumi.ResourceOptions(depends_on=[namespace]),
)
pulumi.export("listener", listener.listener_id)
pulumi.export("alertRules", listener.alert_rules_config_map)
