"""The Kubernetes side of the corporate network: the proxy Secret and the CA ConfigMap.

A proxy URL may hold credentials, so its variables live in a Secret (``envFrom`` of the listener
and every runner); the CA goes in a ConfigMap mounted by both (components/network.py has the
rules shared with AWS).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from gha_scalesets.components.args import ScaleSetListenerArgs
from gha_scalesets.components.naming import ListenerNames
from gha_scalesets.contract.names import BUNDLE_FILE, CA_FILE
from gha_scalesets.contract.network import (
    BASE_NO_PROXY,
    K8S_NO_PROXY,
    no_proxy_list,
    proxy_environment,
    trust_bundle,
)


@dataclass
class K8sNetwork:
    """Names of the proxy Secret and the CA ConfigMap (None when not configured)."""

    proxy_secret: pulumi.Output[str] | None = None
    ca_config_map: pulumi.Output[str] | None = None
    no_proxy: str = ""  # the NO_PROXY value in the Secret


def k8s_network(
    args: ScaleSetListenerArgs,
    names: ListenerNames,
    metadata: Callable[[str], dict[str, Any]],
    opts: pulumi.ResourceOptions,
) -> K8sNetwork:
    """The proxy Secret (``envFrom`` of the listener and every runner) and the CA ConfigMap
    (``ca.pem`` and the full ``bundle.pem``, mounted at ``RUNNER_CA_DIR``)."""
    secret = config_map = None
    no_proxy = no_proxy_list(args.no_proxy, (*BASE_NO_PROXY, *K8S_NO_PROXY))
    if args.proxy is not None:
        variables: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            pulumi.Output.from_input(args.proxy).apply(
                lambda proxy: proxy_environment(proxy, no_proxy)
            )
        )
        secret = k8s.core.v1.Secret(
            names.child("proxy"),
            metadata=metadata("proxy"),
            type="Opaque",
            string_data=variables,
            opts=opts,
        ).metadata.name
    if args.ca_bundle:
        config_map = k8s.core.v1.ConfigMap(
            names.child("ca"),
            metadata=metadata("ca"),
            data={CA_FILE: args.ca_bundle, BUNDLE_FILE: trust_bundle(args.ca_bundle)},
            opts=opts,
        ).metadata.name
    return K8sNetwork(secret, config_map, no_proxy)
