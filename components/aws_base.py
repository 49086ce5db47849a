"""What the EC2 and ECS runtimes share: credential, cache, network, log groups, roles, settings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from gha_scalesets.components import iam
from gha_scalesets.components.args import ScaleSetListenerArgs
from gha_scalesets.components.aws_scope import AwsScope
from gha_scalesets.components.cache import RunnerCache
from gha_scalesets.components.naming import ListenerNames
from gha_scalesets.components.network import aws_proxy_env
from gha_scalesets.components.secrets import AwsCredential
from gha_scalesets.components.settings import resolve_env, setting_variable
from gha_scalesets.contract.names import METRICS_NAMESPACE

_ANYWHERE: dict[str, Any] = {"cidr_blocks": ["0.0.0.0/0"], "ipv6_cidr_blocks": ["::/0"]}


@dataclass
class AwsBase:
    """The parts of an AWS listener that exist before its runtime-specific resources."""

    names: ListenerNames
    args: ScaleSetListenerArgs
    parent: pulumi.Resource
    tags: dict[str, str]
    scope: pulumi.Output[AwsScope]
    credential: AwsCredential
    cache: RunnerCache
    scale_sets: pulumi.Output[list[dict[str, Any]]]
    listener_security_group: aws.ec2.SecurityGroup
    runner_security_group: aws.ec2.SecurityGroup

    @property
    def opts(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.parent)

    @property
    def region(self) -> pulumi.Output[str]:
        return self.scope.apply(lambda s: s.region)

    def runner_statements(self, *, own_instance_only: bool) -> pulumi.Output[list[iam.Statement]]:
        """A runner's permissions: read and delete its JIT config parameter, once."""
        return pulumi.Output.all(self.scope, self.credential.key_arn).apply(
            lambda v: iam.runner_jit_config(
                v[0],
                ssm_prefix=self.names.ssm_prefix,
                kms_key_arn=v[1],
                own_instance_only=own_instance_only,
            )
        )

    def core_statements(self) -> pulumi.Output[list[iam.Statement]]:
        """The listener's permissions on its table, queue, credential, key, JIT parameters."""
        return pulumi.Output.all(
            scope=self.scope,
            table_arn=self.cache.table.arn,
            queue_arn=self.cache.queue.arn,
            secret_arn=self.credential.secret.arn,
            kms_key_arn=self.credential.key_arn,
        ).apply(lambda v: iam.listener_core(ssm_prefix=self.names.ssm_prefix, **v))

    def listener_env(
        self, runtime_config: pulumi.Input[dict[str, Any]], ca_bundle: str | None = None
    ) -> pulumi.Output[dict[str, str]]:
        """The ``LISTENER_*`` variables of this listener, given its runtime section, plus the
        proxy variables and ``LISTENER_CA_BUNDLE`` = ``ca_bundle`` (PEM text or a file)."""
        region = self.region
        ca = {setting_variable("ca_bundle"): ca_bundle} if ca_bundle else {}
        return resolve_env(
            github_config_url=self.args.github_config_url,
            runtime=self.args.runtime,
            credentials={"secret_arn": self.credential.secret.arn},
            scale_sets=self.scale_sets,
            runtime_config=runtime_config,
            metrics_port=self.args.metrics_port,
            registry={"type": "dynamodb", "table_name": self.cache.table.name, "region": region},
            aws={"region": region},
            # What the alarms read: the namespace and Listener dimension of alarms.alarm_specs.
            cloudwatch={"namespace": METRICS_NAMESPACE, "listener_name": self.names.listener_id},
            network=aws_proxy_env(self.args).apply(lambda env: env | ca),
            pacing=self.args.pacing.listener_setting(),
        )

    def log_group(self, kind: str) -> aws.cloudwatch.LogGroup:
        return aws.cloudwatch.LogGroup(
            self.names.child(f"{kind}-logs"),
            name=self.names.log_group(kind),
            retention_in_days=self.args.log_retention_days,
            kms_key_id=self.args.log_kms_key_arn,
            tags=self.tags,
            opts=self.opts,
        )

    def role(
        self, key: str, service: str, statements: pulumi.Output[list[iam.Statement]]
    ) -> aws.iam.Role:
        """A role for ``service`` with one inline policy holding exactly ``statements``."""
        role = aws.iam.Role(
            self.names.child(key),
            assume_role_policy=self.scope.apply(lambda s: json.dumps(iam.assume_role(service, s))),
            tags=self.tags,
            opts=self.opts,
        )
        aws.iam.RolePolicy(
            self.names.child(key),
            role=role.id,
            policy=statements.apply(lambda s: json.dumps(iam.document(s))),
            opts=self.opts,
        )
        return role


def security_groups(
    names: ListenerNames,
    vpc_id: pulumi.Input[str] | None,
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> tuple[aws.ec2.SecurityGroup, aws.ec2.SecurityGroup]:
    """No inbound rules for either; the listener may only speak HTTPS (GitHub, AWS APIs),
    runners anything outbound (jobs fetch from everywhere)."""
    opts = pulumi.ResourceOptions(parent=parent)

    def group(key: str, description: str, protocol: str, port: int) -> aws.ec2.SecurityGroup:
        return aws.ec2.SecurityGroup(
            names.child(key),
            description=description,
            vpc_id=vpc_id,
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol=protocol, from_port=port, to_port=port, **_ANYWHERE
                )
            ],
            tags=tags,
            opts=opts,
        )

    return (
        group(
            "listener", f"gha-scalesets listener {names.listener_id}: HTTPS out only", "tcp", 443
        ),
        # Protocol "-1" with port 0: all traffic.
        group("runner", f"gha-scalesets runners of {names.listener_id}: outbound only", "-1", 0),
    )
