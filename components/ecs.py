"""ECS runtime: the listener as a Fargate service of one, runners as Fargate tasks."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from gha_scalesets.components import iam
from gha_scalesets.components.args import ScaleSetListenerArgs
from gha_scalesets.components.aws_base import AwsBase
from gha_scalesets.components.naming import ListenerNames
from gha_scalesets.components.network import ecs_runner_env
from gha_scalesets.components.platforms import ecs_cpu_architecture
from gha_scalesets.contract.boot import runner_entrypoint

RUNNER_CONTAINER = "runner"
LISTENER_CONTAINER = "listener"
LISTENER_UID = "10001"  # the Dockerfile's user


@dataclass
class EcsDeployment:
    service: aws.ecs.Service
    runner_task_definition: aws.ecs.TaskDefinition


def cluster_arn(
    names: ListenerNames, args: ScaleSetListenerArgs, tags: dict[str, str], parent: pulumi.Resource
) -> pulumi.Output[str]:
    """The given cluster, or a new one with Container Insights."""
    if args.ecs.cluster_arn is not None:
        return pulumi.Output.from_input(args.ecs.cluster_arn)
    cluster = aws.ecs.Cluster(
        names.child("cluster"),
        settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return cluster.arn


def task_family(names: ListenerNames, role: str) -> str:
    """A task definition family unique per stack and listener (letters, digits, - and _)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"gha-{names.stack}-{names.component}-{role}")


def _logging(group: str, region: str, prefix: str) -> dict[str, Any]:
    return {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": group,
            "awslogs-region": region,
            "awslogs-stream-prefix": prefix,
        },
    }


def listener_container(
    image: str, env: dict[str, str], log_group: str, region: str
) -> dict[str, Any]:
    """The listener's container: non-root, read-only root filesystem, no capabilities."""
    return {
        "name": LISTENER_CONTAINER,
        "image": image,
        "essential": True,
        "user": LISTENER_UID,
        "readonlyRootFilesystem": True,
        "linuxParameters": {"capabilities": {"drop": ["ALL"]}, "initProcessEnabled": True},
        "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "logConfiguration": _logging(log_group, region, LISTENER_CONTAINER),
        "stopTimeout": 30,
    }


def runner_container(
    image: str, log_group: str, region: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """The runner's container: its entrypoint fetches (and deletes) the JIT config parameter
    the listener names in the task's environment override, then execs the runner. ``env``:
    the proxy variables and the private CA (docs/corporate-networks.md)."""
    return {
        "name": RUNNER_CONTAINER,
        "image": image,
        "essential": True,
        "entryPoint": ["/bin/bash", "-c"],
        "command": [runner_entrypoint(region)],
        "environment": [{"name": k, "value": v} for k, v in sorted((env or {}).items())],
        "linuxParameters": {"initProcessEnabled": True},
        "logConfiguration": _logging(log_group, region, RUNNER_CONTAINER),
    }


def _fargate(family: str, cpu: int, memory: int, platform: str) -> dict[str, Any]:
    """Fargate task definition settings; the CPU architecture is the images' platform."""
    return {
        "family": family,
        "cpu": str(cpu),
        "memory": str(memory),
        "network_mode": "awsvpc",
        "requires_compatibilities": ["FARGATE"],
        "runtime_platform": aws.ecs.TaskDefinitionRuntimePlatformArgs(
            operating_system_family="LINUX", cpu_architecture=ecs_cpu_architecture(platform)
        ),
    }


def deploy(base: AwsBase, cluster: pulumi.Output[str]) -> EcsDeployment:
    """Log groups, execution/task roles, both task definitions and the listener service."""
    names, args, opts, options = base.names, base.args, base.opts, base.args.ecs
    runner_image = options.runner_image
    assert runner_image is not None  # validation requires it on ECS
    region = base.region
    listener_logs = base.log_group("listener")
    runner_logs = base.log_group("runners")

    execution_role = base.role(
        "task-execution",
        "ecs-tasks.amazonaws.com",
        pulumi.Output.all(base.scope, listener_logs.arn, runner_logs.arn).apply(
            lambda v: iam.task_execution(
                v[0], log_group_arns=v[1:], images=[args.listener_image, runner_image]
            )
        ),
    )
    runner_role = base.role(
        "runner", "ecs-tasks.amazonaws.com", base.runner_statements(own_instance_only=False)
    )
    runner_family = task_family(names, "runner")
    runner_task = aws.ecs.TaskDefinition(
        names.child("runner"),
        execution_role_arn=execution_role.arn,
        task_role_arn=runner_role.arn,
        container_definitions=pulumi.Output.all(
            runner_logs.name, region, ecs_runner_env(args)
        ).apply(lambda v: json.dumps([runner_container(runner_image, *v)])),
        tags=base.tags,
        opts=opts,
        **_fargate(runner_family, options.runner_cpu, options.runner_memory, args.platform),
    )

    listener_role = base.role(
        "listener",
        "ecs-tasks.amazonaws.com",
        pulumi.Output.all(
            base.core_statements(), base.scope, cluster, runner_role.arn, execution_role.arn
        ).apply(
            lambda v: [
                *v[0],
                *iam.ecs_listener(
                    v[1], cluster_arn=v[2], runner_family=runner_family, pass_role_arns=v[3:]
                ),
            ]
        ),
    )
    runtime_config = pulumi.Output.all(
        cluster=cluster,
        task_definition=runner_task.arn,
        subnet_ids=list(args.subnet_ids),
        security_group_ids=[base.runner_security_group.id],
        events_queue_url=base.cache.queue.url,
        kms_key_id=base.credential.key_arn,
    ).apply(
        lambda v: (
            v
            | {
                "container_name": RUNNER_CONTAINER,
                "launch_type": "FARGATE",
                "ssm_prefix": names.ssm_prefix,
            }
        )
    )
    listener_task = aws.ecs.TaskDefinition(
        names.child("listener"),
        execution_role_arn=execution_role.arn,
        task_role_arn=listener_role.arn,
        container_definitions=pulumi.Output.all(
            base.listener_env(runtime_config, args.ca_bundle), listener_logs.name, region
        ).apply(lambda v: json.dumps([listener_container(args.listener_image, *v)])),
        tags=base.tags,
        opts=opts,
        **_fargate(
            task_family(names, "listener"),
            options.listener_cpu,
            options.listener_memory,
            args.platform,
        ),
    )
    service = aws.ecs.Service(
        names.child("listener"),
        cluster=cluster,
        task_definition=listener_task.arn,
        # Fargate spreads a service's tasks across the zones of its subnets by itself.
        desired_count=args.replicas,
        launch_type="FARGATE",
        network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
            subnets=list(args.subnet_ids),
            security_groups=[base.listener_security_group.id],
            assign_public_ip=False,
        ),
        # Rolling: new tasks start as standbys before the old ones stop (a stopping task
        # releases its leases, so a standby takes over within a renew interval); roll back a
        # deployment that cannot start.
        deployment_minimum_healthy_percent=100,
        deployment_maximum_percent=200,
        deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
            enable=True, rollback=True
        ),
        propagate_tags="SERVICE",
        enable_ecs_managed_tags=True,
        tags=base.tags,
        opts=opts,
    )
    return EcsDeployment(service=service, runner_task_definition=runner_task)
