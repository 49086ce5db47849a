"""The GitHub credential of a listener: Secrets Manager + KMS on AWS, a Secret on Kubernetes.

The credential only ever travels as a Pulumi secret (encrypted in state, masked in output); what
the listener is told in plain configuration is where to find it (an ARN or file paths).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.args import ScaleSetListenerArgs
from components.naming import ListenerNames

# Where the Secret is mounted and its keys (file names), not secret values.
K8S_SECRET_MOUNT = "/var/run/secrets/github"  # noqa: S105
K8S_TOKEN_KEY = "token"  # noqa: S105
K8S_PRIVATE_KEY_KEY = "private_key"


def secrets_manager_value(args: ScaleSetListenerArgs) -> pulumi.Output[str]:
    """The secret value the listener reads: ``{"github_token"}`` or ``{"github_app"}`` JSON."""
    app = args.github_app
    if app is None:
        return pulumi.Output.from_input(args.github_token).apply(
            lambda token: json.dumps({"github_token": token})
        )
    return pulumi.Output.all(app.client_id, app.installation_id, app.private_key).apply(
        lambda v: json.dumps(
            {
                "github_app": {
                    "client_id": str(v[0]),
                    "installation_id": int(v[1]),
                    "private_key": v[2],
                }
            }
        )
    )


@dataclass
class AwsCredential:
    key_arn: pulumi.Output[str]
    secret: aws.secretsmanager.Secret


def aws_credential(
    names: ListenerNames, args: ScaleSetListenerArgs, tags: dict[str, str], parent: pulumi.Resource
) -> AwsCredential:
    """The KMS key (given or created, rotation on) and the secret holding the credential."""
    opts = pulumi.ResourceOptions(parent=parent)
    if args.kms_key_arn is not None:
        key_arn = pulumi.Output.from_input(args.kms_key_arn)
    else:
        key = aws.kms.Key(
            names.child("key"),
            description=f"gha-scalesets listener {names.listener_id}: credential, table, JIT",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=tags,
            opts=opts,
        )
        key_arn = key.arn
    secret = aws.secretsmanager.Secret(
        names.child("github"),
        description=f"GitHub credential of gha-scalesets listener {names.listener_id}",
        kms_key_id=key_arn,
        recovery_window_in_days=7,
        tags=tags,
        opts=opts,
    )
    aws.secretsmanager.SecretVersion(
        names.child("github"),
        secret_id=secret.id,
        secret_string=pulumi.Output.secret(secrets_manager_value(args)),
        opts=opts,
    )
    return AwsCredential(key_arn=key_arn, secret=secret)


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
