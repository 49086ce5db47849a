"""The GitHub credential of a listener on AWS: a Secrets Manager secret under a KMS key.

The credential only ever travels as a Pulumi secret (encrypted in state, masked in output); what
the listener is told in plain configuration is where to find it (the secret's ARN). Kubernetes
keeps it in a Secret instead (components/k8s_secret.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from gha_scalesets.components.args import ScaleSetListenerArgs
from gha_scalesets.components.naming import ListenerNames
from gha_scalesets.providers import GitHubAppArgs


def _entry(credential: GitHubAppArgs | pulumi.Input[str]) -> pulumi.Output[dict[str, Any]]:
    if isinstance(credential, GitHubAppArgs):
        return pulumi.Output.all(
            credential.client_id, credential.installation_id, credential.private_key
        ).apply(
            lambda v: {
                "github_app": {
                    "client_id": str(v[0]),
                    "installation_id": int(v[1]),
                    "private_key": v[2],
                }
            }
        )
    return pulumi.Output.from_input(credential).apply(lambda token: {"github_token": token})


def secrets_manager_value(args: ScaleSetListenerArgs) -> pulumi.Output[str]:
    """The secret value the listener reads: ``{"github_token"}`` or ``{"github_app"}`` JSON,
    or ``{"credentials": [...]}`` of those for several."""
    several = bool(args.github_credentials)
    return pulumi.Output.all(*map(_entry, args.credential_list())).apply(
        lambda entries: json.dumps({"credentials": entries} if several else entries[0])
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
    value: pulumi.Output[str] = pulumi.Output.secret(secrets_manager_value(args))
    aws.secretsmanager.SecretVersion(
        names.child("github"),
        secret_id=secret.id,
        secret_string=value,
        opts=opts,
    )
    return AwsCredential(key_arn=key_arn, secret=secret)
