"""The GitHub credential of a listener on Kubernetes: a Secret the listener mounts as files.

The credential only ever travels as a Pulumi secret (encrypted in state, masked in output); what
the listener is told in plain configuration is where to find it (file paths).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from gha_scalesets.components.args import ScaleSetListenerArgs
from gha_scalesets.components.naming import ListenerNames
from gha_scalesets.providers import GitHubAppArgs

# Where the Secret is mounted and its keys (file names), not secret values.
K8S_SECRET_MOUNT = "/var/run/secrets/github"  # noqa: S105
K8S_TOKEN_KEY = "token"  # noqa: S105
K8S_PRIVATE_KEY_KEY = "private_key"


@dataclass
class K8sCredential:
    secret: k8s.core.v1.Secret
    listener_credentials: pulumi.Output[Any]
    """``LISTENER_CREDENTIALS``: file paths in the mounted Secret, no secret values (a list
    when there are several credentials)."""


def _mounted(
    credential: GitHubAppArgs | pulumi.Input[str], suffix: str
) -> tuple[str, pulumi.Input[str], pulumi.Output[dict[str, Any]]]:
    """The Secret key of one credential, its value, and how the listener finds it."""
    if not isinstance(credential, GitHubAppArgs):
        key = K8S_TOKEN_KEY + suffix
        return (
            key,
            credential,
            pulumi.Output.from_input({"token_file": f"{K8S_SECRET_MOUNT}/{key}"}),
        )
    key = K8S_PRIVATE_KEY_KEY + suffix
    source = pulumi.Output.all(credential.client_id, credential.installation_id).apply(
        lambda v: {
            "app": {
                "client_id": str(v[0]),
                "installation_id": int(v[1]),
                "private_key_file": f"{K8S_SECRET_MOUNT}/{key}",
            }
        }
    )
    return key, credential.private_key, source


def k8s_credential(
    names: ListenerNames,
    args: ScaleSetListenerArgs,
    metadata: dict[str, Any],
    opts: pulumi.ResourceOptions,
) -> K8sCredential:
    """A Secret with the token(s) or the Apps' private keys, mounted as files by the listener
    (keys ``token``/``private_key``; ``token-0``, ``private_key-1``... for several)."""
    several = bool(args.github_credentials)
    mounted = [
        _mounted(c, f"-{index}" if several else "")
        for index, c in enumerate(args.credential_list())
    ]
    data: dict[str, pulumi.Input[str]] = {key: value for key, value, _ in mounted}
    sources = pulumi.Output.all(*(source for _, _, source in mounted))
    credentials = sources if several else sources.apply(lambda found: found[0])
    secret = k8s.core.v1.Secret(
        names.child("github"),
        metadata=metadata | {"name": names.child("github")},
        type="Opaque",
        string_data=pulumi.Output.secret(data),
        opts=opts,
    )
    return K8sCredential(secret=secret, listener_credentials=credentials)
