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

# Where the Secret is mounted and its keys (file names), not secret values.
K8S_SECRET_MOUNT = "/var/run/secrets/github"  # noqa: S105
K8S_TOKEN_KEY = "token"  # noqa: S105
K8S_PRIVATE_KEY_KEY = "private_key"


@dataclass
class K8sCredential:
    secret: k8s.core.v1.Secret
    listener_credentials: pulumi.Output[dict[str, Any]]
    """``LISTENER_CREDENTIALS``: file paths in the mounted Secret, no secret values."""


def k8s_credential(
    names: ListenerNames,
    args: ScaleSetListenerArgs,
    metadata: dict[str, Any],
    opts: pulumi.ResourceOptions,
) -> K8sCredential:
    """A Secret with the token or the App's private key, mounted as files by the listener."""
    app = args.github_app
    if app is None:
        data: pulumi.Input[dict[str, str]] = {K8S_TOKEN_KEY: args.github_token}  # type: ignore[dict-item]
        credentials = pulumi.Output.from_input(
            {"token_file": f"{K8S_SECRET_MOUNT}/{K8S_TOKEN_KEY}"}
        )
    else:
        data = {K8S_PRIVATE_KEY_KEY: app.private_key}  # type: ignore[dict-item]
        credentials = pulumi.Output.all(app.client_id, app.installation_id).apply(
            lambda v: {
                "app": {
                    "client_id": str(v[0]),
                    "installation_id": int(v[1]),
                    "private_key_file": f"{K8S_SECRET_MOUNT}/{K8S_PRIVATE_KEY_KEY}",
                }
            }
        )
    secret = k8s.core.v1.Secret(
        names.child("github"),
        metadata=metadata | {"name": names.child("github")},
        type="Opaque",
        string_data=pulumi.Output.secret(data),
        opts=opts,
    )
    return K8sCredential(secret=secret, listener_credentials=credentials)
