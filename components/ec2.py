"""EC2 runtime: the listener in a self-healing Auto Scaling group of one, runners as instances."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from gha_scalesets.components import iam
from gha_scalesets.components.aws_base import AwsBase
from gha_scalesets.components.network import LISTENER_CA_FILE, aws_proxy_env
from gha_scalesets.components.platforms import al2023_ami
from gha_scalesets.components.user_data import listener_user_data
from gha_scalesets.contract.boot import runner_user_data


@dataclass
class Ec2Deployment:
    auto_scaling_group: aws.autoscaling.Group
    runner_launch_template: aws.ec2.LaunchTemplate


def _b64(script: str) -> str:
    return base64.b64encode(script.encode()).decode()


def _network(security_group_id: pulumi.Input[str], *, launched_by_listener: bool) -> dict[str, Any]:
    """No public address. RunInstances refuses an instance-level subnet (the listener picks one
    per launch) together with a template network interface, so the runner template names only
    its security group; the listener's role may not launch with a public address at all."""
    if launched_by_listener:
        return {"vpc_security_group_ids": [security_group_id]}
    return {
        "network_interfaces": [
            aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                associate_public_ip_address="false",
                delete_on_termination="true",
                security_groups=[security_group_id],
            )
        ]
    }


def _hardening(volume_gb: int, root_device: str, *, metadata_tags: bool) -> dict[str, Any]:
    """Shared by both templates: IMDSv2 only with hop limit 1 (containers on the host cannot
    reach the instance role) and an encrypted root volume."""
    return {
        "metadata_options": aws.ec2.LaunchTemplateMetadataOptionsArgs(
            http_endpoint="enabled",
            http_tokens="required",
            http_put_response_hop_limit=1,
            instance_metadata_tags="enabled" if metadata_tags else "disabled",
        ),
        "block_device_mappings": [
            aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name=root_device,
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    encrypted="true",
                    volume_size=volume_gb,
                    volume_type="gp3",
                    delete_on_termination="true",
                ),
            )
        ],
    }


def _tag_specifications(tags: dict[str, str]) -> list[aws.ec2.LaunchTemplateTagSpecificationArgs]:
    return [
        aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=tags)
        for kind in ("instance", "volume")
    ]


def deploy(base: AwsBase) -> Ec2Deployment:
    """Runner role/profile/template, listener role/profile/template and its Auto Scaling group."""
    names, args, opts, options = base.names, base.args, base.opts, base.args.ec2
    region = base.region
    listener_logs = base.log_group("listener")

    runner_role = base.role(
        "runner", "ec2.amazonaws.com", base.runner_statements(own_instance_only=True)
    )
    runner_profile = aws.iam.InstanceProfile(
        names.child("runner"), role=runner_role.name, opts=opts
    )
    runner_template = aws.ec2.LaunchTemplate(
        names.child("runner"),
        description=f"gha-scalesets runners of {names.listener_id}",
        image_id=options.runner_ami_id,
        iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=runner_profile.arn),
        # Ephemeral runners power off after their job: the instance goes away with them.
        instance_initiated_shutdown_behavior="terminate",
        # The bootstrap reads its scale set id from the instance tags in IMDS.
        user_data=pulumi.Output.all(region, aws_proxy_env(args)).apply(
            lambda v: _b64(
                runner_user_data(names.ssm_prefix, v[0], network_env=v[1], ca_pem=args.ca_bundle)
            )
        ),
        tag_specifications=_tag_specifications(base.tags),
        update_default_version=True,
        tags=base.tags,
        opts=opts,
        **_network(base.runner_security_group.id, launched_by_listener=True),
        **_hardening(options.runner_volume_gb, options.root_device_name, metadata_tags=True),
    )

    runtime_config = pulumi.Output.all(
        launch_template_id=runner_template.id,
        subnet_ids=list(args.subnet_ids),
        events_queue_url=base.cache.queue.url,
        kms_key_id=base.credential.key_arn,
    ).apply(
        lambda v: (
            v
            | {
                "launch_template_version": "$Latest",
                "instance_types": list(options.runner_instance_types),
                "spot": options.spot,
                "on_demand_fallback": True,
                "ssm_prefix": names.ssm_prefix,
            }
        )
    )
    listener_role = base.role(
        "listener",
        "ec2.amazonaws.com",
        _listener_statements(
            base, runner_template.id, runner_role.arn, listener_logs.arn, args.subnet_ids
        ),
    )
    listener_profile = aws.iam.InstanceProfile(
        names.child("listener"), role=listener_role.name, opts=opts
    )
    ca_file = LISTENER_CA_FILE if args.ca_bundle else None
    user_data = pulumi.Output.all(base.listener_env(runtime_config, ca_file), region).apply(
        lambda v: _b64(
            listener_user_data(
                v[0],
                args.listener_image,
                v[1],
                names.log_group("listener"),
                ca_pem=args.ca_bundle,
            )
        )
    )
    listener_template = aws.ec2.LaunchTemplate(
        names.child("listener"),
        description=f"gha-scalesets listener {names.listener_id}",
        image_id=options.listener_ami_id or al2023_ami(args.platform),
        instance_type=options.listener_instance_type,
        iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=listener_profile.arn),
        user_data=user_data,
        tag_specifications=_tag_specifications(base.tags),
        update_default_version=True,
        tags=base.tags,
        opts=opts,
        **_network(base.listener_security_group.id, launched_by_listener=False),
        **_hardening(20, options.root_device_name, metadata_tags=False),
    )
    group = aws.autoscaling.Group(
        names.child("listener"),
        min_size=args.replicas,
        max_size=args.replicas,
        desired_capacity=args.replicas,
        vpc_zone_identifiers=list(args.subnet_ids),  # instances balanced across their zones
        launch_template=aws.autoscaling.GroupLaunchTemplateArgs(
            id=listener_template.id, version=listener_template.latest_version.apply(str)
        ),
        health_check_type="EC2",
        health_check_grace_period=180,
        # A new template replaces instances one at a time; with two or more replicas a
        # standby serves meanwhile (a terminated listener releases its leases on SIGTERM).
        instance_refresh=aws.autoscaling.GroupInstanceRefreshArgs(
            strategy="Rolling",
            preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(
                min_healthy_percentage=50 if args.replicas > 1 else 0
            ),
        ),
        tags=[
            aws.autoscaling.GroupTagArgs(key=k, value=v, propagate_at_launch=True)
            for k, v in {"Name": f"gha-scalesets-listener-{names.listener_id}", **base.tags}.items()
        ],
        opts=opts,
    )
    return Ec2Deployment(auto_scaling_group=group, runner_launch_template=runner_template)


def _listener_statements(
    base: AwsBase,
    launch_template_id: pulumi.Output[str],
    runner_role_arn: pulumi.Output[str],
    log_group_arn: pulumi.Output[str],
    subnet_ids: Sequence[pulumi.Input[str]],
) -> pulumi.Output[list[iam.Statement]]:
    return pulumi.Output.all(
        core=base.core_statements(),
        scope=base.scope,
        launch_template_id=launch_template_id,
        runner_role_arn=runner_role_arn,
        log_group_arn=log_group_arn,
        subnet_ids=list(subnet_ids),
        runner_security_group=base.runner_security_group.id,
        scale_sets=base.scale_sets,
    ).apply(
        lambda v: [
            *v["core"],
            *iam.ec2_listener(
                v["scope"],
                launch_template_id=v["launch_template_id"],
                instance_types=base.args.ec2.runner_instance_types,
                spot=base.args.ec2.spot,
                subnet_ids=v["subnet_ids"],
                security_group_ids=[v["runner_security_group"]],
                runner_role_arn=v["runner_role_arn"],
                scale_set_ids=[s["scale_set_id"] for s in v["scale_sets"]],
                log_group_arn=v["log_group_arn"],
            ),
            *iam.ecr_pull(v["scope"], [base.args.listener_image]),
        ]
    )
