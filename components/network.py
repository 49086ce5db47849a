"""The listener's and runners' way to GitHub on a corporate network: proxy and private CA.

Both reach GitHub through ``args.proxy`` (the standard ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``
variables, with the cloud metadata and in-cluster addresses always in ``NO_PROXY``) and trust
``args.ca_bundle`` besides the public roots. On Kubernetes the proxy variables live in a Secret
(a proxy URL may hold credentials) and the CA in a ConfigMap mounted by listener and runners.
On AWS they are plain configuration (task definitions, user data), so a proxy URL with
credentials is refused there; the CA goes in as text and is written to files at boot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s

from gha_scalesets.components.args import ListenerConfigError, ScaleSetListenerArgs
from gha_scalesets.components.naming import ListenerNames
from gha_scalesets.listener.network import (
    BASE_NO_PROXY,
    BUNDLE_FILE,
    CA_FILE,
    CA_PEM_ENV,
    K8S_NO_PROXY,
    RUNNER_CA_DIR,
    no_proxy_list,
    proxy_environment,
    trust_bundle,
)

LISTENER_CA_FILE = f"{RUNNER_CA_DIR}/{CA_FILE}"  # where the listener finds the CA


def aws_proxy_problem(proxy: str) -> str | None:
    """Why ``proxy`` cannot be used on AWS runtimes, or None."""
    parts = urlsplit(proxy)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL, e.g. http://proxy.corp:3128"
    if parts.username is not None:
        return (
            "a proxy URL with credentials would sit in plain EC2 user data and ECS task "
            "definitions; use a proxy that admits the VPC's addresses, or the k8s runtime"
        )
    return None


def _checked(proxy: str) -> str:
    if problem := aws_proxy_problem(proxy):
        raise ListenerConfigError(f"proxy: {problem}")
    return proxy


def aws_proxy_env(args: ScaleSetListenerArgs) -> pulumi.Output[dict[str, str]]:
    """The proxy variables for the listener and runners on AWS ({} without a proxy)."""
    if args.proxy is None:
        return pulumi.Output.from_input({})
    no_proxy = no_proxy_list(args.no_proxy, BASE_NO_PROXY)
    return pulumi.Output.from_input(args.proxy).apply(
        lambda proxy: proxy_environment(_checked(proxy), no_proxy)
    )


def ecs_runner_env(args: ScaleSetListenerArgs) -> pulumi.Output[dict[str, str]]:
    """The runner task definition's environment: proxy variables and the CA as text (the
    runner entrypoint writes and trusts it)."""
    ca = {CA_PEM_ENV: args.ca_bundle} if args.ca_bundle else {}
    return aws_proxy_env(args).apply(lambda env: env | ca)


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
        secret = k8s.core.v1.Secret(
            names.child("proxy"),
            metadata=metadata("proxy"),
            type="Opaque",
            string_data=pulumi.Output.secret(
                pulumi.Output.from_input(args.proxy).apply(
                    lambda proxy: proxy_environment(proxy, no_proxy)
                )
            ),
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
