"""The AWS side of a listener (ec2 or ecs): shared parts, the runtime, then the alarms."""

from __future__ import annotations

from typing import Any

import pulumi

from gha_scalesets.components import ec2, ecs
from gha_scalesets.components.alarms import alarm_specs, create_alarms
from gha_scalesets.components.args import ScaleSetListenerArgs
from gha_scalesets.components.aws_base import AwsBase, security_groups
from gha_scalesets.components.aws_scope import lookup_scope
from gha_scalesets.components.cache import create_runner_cache
from gha_scalesets.components.deployment import Deployment
from gha_scalesets.components.naming import TAG_KEY, ListenerNames
from gha_scalesets.components.secrets import aws_credential


def deploy(
    names: ListenerNames,
    args: ScaleSetListenerArgs,
    scale_sets: pulumi.Output[list[dict[str, Any]]],
    parent: pulumi.Resource,
) -> Deployment:
    """Everything of an EC2 or ECS listener, as children of ``parent``."""
    tags = {**args.tags, TAG_KEY: names.listener_id}
    credential = aws_credential(names, args, tags, parent)
    cluster = ecs.cluster_arn(names, args, tags, parent) if args.runtime == "ecs" else None
    cache = create_runner_cache(names, args.runtime, credential.key_arn, cluster, tags, parent)
    listener_group, runner_group = security_groups(names, args.vpc_id, tags, parent)
    base = AwsBase(
        names=names,
        args=args,
        parent=parent,
        tags=tags,
        scope=lookup_scope(parent),
        credential=credential,
        cache=cache,
        scale_sets=scale_sets,
        listener_security_group=listener_group,
        runner_security_group=runner_group,
    )
    if cluster is None:
        on_ec2 = ec2.deploy(base)
        listener_id = on_ec2.auto_scaling_group.name
        runner_template = on_ec2.runner_launch_template.id
    else:
        on_ecs = ecs.deploy(base, cluster)
        listener_id = on_ecs.service.id
        runner_template = on_ecs.runner_task_definition.arn
    if not args.alarm_actions:
        pulumi.log.warn(
            f"ScaleSetListener {names.component!r}: alarm_actions is empty, so its alarms"
            " notify nobody (pass an SNS topic ARN)",
            resource=parent,
        )
    alarms = create_alarms(
        names,
        alarm_specs(
            names.listener_id,
            cache.table.name,
            cache.dead_letter_queue.name,
            args.alarm_thresholds,
            scale_sets=len(args.scale_sets),
            spot=args.runtime == "ec2" and args.ec2.spot,
        ),
        args.alarm_actions,
        tags,
        parent,
    )
    return Deployment(
        listener_id=listener_id,
        secret_name=credential.secret.name,
        runner_template=runner_template,
        secret_arn=credential.secret.arn,
        kms_key_arn=credential.key_arn,
        table_name=cache.table.name,
        queue_url=cache.queue.url,
        dead_letter_queue_url=cache.dead_letter_queue.url,
        alarm_arns={key: alarm.arn for key, alarm in alarms.items()},
    )
