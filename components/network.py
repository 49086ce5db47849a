"""The listener's and runners' way to GitHub on a corporate network: proxy and private CA.

Both reach GitHub through ``args.proxy`` (the standard ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``
variables, with the cloud metadata and in-cluster addresses always in ``NO_PROXY``) and trust
``args.ca_bundle`` besides the public roots. On Kubernetes the proxy variables live in a Secret
(a proxy URL may hold credentials) and the CA in a ConfigMap mounted by listener and runners.
On AWS they are plain configuration (task definitions, user data), so a proxy URL with
credentials is refused there; the CA goes in as text and is written to files at boot.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pulumi

from gha_scalesets.components.args import ListenerConfigError, ScaleSetListenerArgs
from gha_scalesets.contract.names import CA_FILE, CA_PEM_ENV, RUNNER_CA_DIR
from gha_scalesets.contract.network import BASE_NO_PROXY, no_proxy_list, proxy_environment

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
