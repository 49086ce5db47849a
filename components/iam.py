"""IAM policy documents of the listener and its runners, as plain dicts from plain values.

Least privilege: no wildcard actions; ``"Resource": "*"`` only where the API has no resource-level
permissions (describe/list calls, ``PutMetricData`` scoped by namespace, ECR's token); everything
else is scoped by ARN, by the launch template / cluster it must go through, or by the listener tag.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gha_scalesets.components.aws_scope import AwsScope
from gha_scalesets.components.images import parse_ecr_image
from gha_scalesets.contract.names import METRICS_NAMESPACE, TAG_INSTANCE_ARN, TAG_SCALE_SET_ID

Statement = dict[str, Any]


def document(statements: Sequence[Statement]) -> dict[str, Any]:
    """A policy document holding ``statements``."""
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(
    sid: str, actions: Sequence[str], resources: Sequence[str] | str, **cond: Any
) -> Statement:
    statement: Statement = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(actions),
        "Resource": resources if isinstance(resources, str) else list(resources),
    }
    if cond:
        statement["Condition"] = cond
    return statement


def assume_role(service: str, scope: AwsScope) -> dict[str, Any]:
    """Trust policy for an AWS service principal, limited to this account (confused deputy)."""
    statement: Statement = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if service == "ecs-tasks.amazonaws.com":
        statement["Condition"] = {
            "StringEquals": {"aws:SourceAccount": scope.account_id},
            "ArnLike": {"aws:SourceArn": scope.arn("ecs", "*")},
        }
    return document([statement])


def jit_parameters_arn(scope: AwsScope, ssm_prefix: str) -> str:
    return scope.arn("ssm", f"parameter{ssm_prefix}/*")


def listener_core(
    scope: AwsScope,
    *,
    table_arn: str,
    queue_arn: str,
    secret_arn: str,
    kms_key_arn: str,
    ssm_prefix: str,
) -> list[Statement]:
    """What every AWS listener needs: its table, queue, credential, JIT parameters, metrics."""
    via = [scope.service_host(s) for s in ("dynamodb", "secretsmanager", "ssm")]
    return [
        _allow(
            "RunnerRegistryTable",
            [
                "dynamodb:BatchGetItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:DeleteItem",
                "dynamodb:DescribeTable",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
            ],
            [table_arn],
        ),
        _allow(
            "RuntimeStateEvents",
            [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
            ],
            [queue_arn],
        ),
        _allow(
            "GitHubCredential",
            ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
            [secret_arn],
        ),
        _allow(
            "JitConfigParameters",
            [
                "ssm:AddTagsToResource",
                "ssm:DeleteParameter",
                "ssm:DeleteParameters",
                "ssm:PutParameter",
            ],
            [jit_parameters_arn(scope, ssm_prefix)],
        ),
        # DescribeParameters has no resource-level permissions; the sweep filters by path.
        _allow("SweepJitConfigParameters", ["ssm:DescribeParameters"], "*"),
        _allow(
            "EncryptionKeyViaServices",
            ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
            [kms_key_arn],
            StringEquals={"kms:ViaService": via},
        ),
        # PutMetricData has no resource-level permissions; the namespace condition scopes it.
        _allow(
            "ListenerMetrics",
            ["cloudwatch:PutMetricData"],
            "*",
            StringEquals={"cloudwatch:namespace": METRICS_NAMESPACE},
        ),
    ]


SPOT_SERVICE = "spot.amazonaws.com"
SPOT_SERVICE_LINKED_ROLE = "AWSServiceRoleForEC2Spot"


def ec2_listener(
    scope: AwsScope,
    *,
    launch_template_id: str,
    instance_types: Sequence[str],
    spot: bool,
    subnet_ids: Sequence[str],
    security_group_ids: Sequence[str],
    runner_role_arn: str,
    scale_set_ids: Sequence[int],
    log_group_arn: str,
) -> list[Statement]:
    """Launch runners only through their launch template, as the listener does; terminate
    only this listener's.

    A launch may set what the listener sets per launch (an instance type of the configured
    list, one of the subnets, spot or on-demand, IMDSv2 only) and nothing else of the
    template's: its image, volumes and security group (``ec2:IsLaunchTemplateResource``). EC2
    has no condition key for user data; a principal with this role could replace it, but only
    on the runner template's image, role, security group and subnets. The listener tags every
    runner it launches with its scale set id (``TAG_SCALE_SET_ID``). With ``spot`` it may
    create the spot service-linked role, which EC2 needs at an account's first spot launch.
    """
    launch_template_arn = scope.arn("ec2", f"launch-template/{launch_template_id}")
    from_template = {"ArnEquals": {"ec2:LaunchTemplate": launch_template_arn}}
    created = [
        "instance/*",
        "volume/*",
        "network-interface/*",
        *(["spot-instances-request/*"] if spot else []),
    ]
    statements = [
        _allow(
            "LaunchRunnerInstances",
            ["ec2:RunInstances"],
            [scope.arn("ec2", "instance/*")],
            **from_template,
            StringEquals={
                "ec2:InstanceType": sorted(instance_types),
                "ec2:MetadataHttpTokens": "required",
            },
        ),
        _allow(
            "KeepTemplateImageVolumesAndGroup",
            ["ec2:RunInstances"],
            [
                scope.arn("ec2", "image/*", owned=False),
                scope.arn("ec2", "volume/*"),
                *(scope.arn("ec2", f"security-group/{g}") for g in security_group_ids),
            ],
            **from_template,
            Bool={"ec2:IsLaunchTemplateResource": "true"},
        ),
        _allow(
            "LaunchIntoRunnerSubnets",
            ["ec2:RunInstances"],
            [
                launch_template_arn,
                *(scope.arn("ec2", f"subnet/{s}") for s in subnet_ids),
                scope.arn("ec2", "network-interface/*"),
                *([scope.arn("ec2", "spot-instances-request/*")] if spot else []),
            ],
            **from_template,
        ),
        {
            "Sid": "NoPublicAddresses",
            "Effect": "Deny",
            "Action": "ec2:RunInstances",
            "Resource": scope.arn("ec2", "network-interface/*"),
            "Condition": {"Bool": {"ec2:AssociatePublicIpAddress": "true"}},
        },
        _allow(
            "TagRunnersAtLaunch",
            ["ec2:CreateTags"],
            [scope.arn("ec2", r) for r in created],
            StringEquals={"ec2:CreateAction": "RunInstances"},
        ),
        _allow(
            "TerminateOwnRunners",
            ["ec2:TerminateInstances"],
            [scope.arn("ec2", "instance/*")],
            StringEquals={f"aws:ResourceTag/{TAG_SCALE_SET_ID}": [str(i) for i in scale_set_ids]},
        ),
        # Describe calls have no resource-level permissions; used for reconciliation only.
        _allow("ReconcileRunners", ["ec2:DescribeInstanceStatus", "ec2:DescribeInstances"], "*"),
        _allow(
            "PassRunnerRole",
            ["iam:PassRole"],
            [runner_role_arn],
            StringEquals={"iam:PassedToService": "ec2.amazonaws.com"},
        ),
        _allow(
            "ListenerLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"]
        ),
    ]
    if spot:
        statements.append(
            _allow(
                "CreateSpotServiceLinkedRole",
                ["iam:CreateServiceLinkedRole"],
                [
                    scope.arn(
                        "iam",
                        f"role/aws-service-role/{SPOT_SERVICE}/{SPOT_SERVICE_LINKED_ROLE}",
                        regional=False,
                    )
                ],
                StringEquals={"iam:AWSServiceName": SPOT_SERVICE},
            )
        )
    return statements


def ecs_listener(
    scope: AwsScope,
    *,
    cluster_arn: str,
    runner_family: str,
    pass_role_arns: Sequence[str],
) -> list[Statement]:
    """Run, tag, stop and list runner tasks of one task family in one cluster."""
    cluster_name = cluster_arn.rsplit("/", 1)[-1]
    in_cluster = {"ArnEquals": {"ecs:cluster": cluster_arn}}
    tasks = [scope.arn("ecs", f"task/{cluster_name}/*")]
    return [
        _allow(
            "RunRunnerTasks",
            ["ecs:RunTask"],
            [scope.arn("ecs", f"task-definition/{runner_family}:*")],
            **in_cluster,
        ),
        _allow(
            "TagRunnerTasksAtLaunch",
            ["ecs:TagResource"],
            tasks,
            StringEquals={"ecs:CreateAction": "RunTask"},
        ),
        _allow("ManageRunnerTasks", ["ecs:DescribeTasks", "ecs:StopTask"], tasks, **in_cluster),
        # ListTasks is authorised on container instances; the cluster condition scopes it.
        _allow("ReconcileRunnerTasks", ["ecs:ListTasks"], "*", **in_cluster),
        _allow(
            "PassRunnerTaskRoles",
            ["iam:PassRole"],
            list(pass_role_arns),
            StringEquals={"iam:PassedToService": "ecs-tasks.amazonaws.com"},
        ),
    ]


def runner_jit_config(
    scope: AwsScope, *, ssm_prefix: str, kms_key_arn: str, own_instance_only: bool
) -> list[Statement]:
    """Read and delete a JIT config parameter, once; decrypt it through SSM only.

    On EC2 (``own_instance_only``) a runner may touch only the parameter the listener tagged
    with its own instance ARN (``TAG_INSTANCE_ARN``). ECS task credentials carry no per-task
    key to compare with, so an ECS runner is limited to this listener's prefix.
    """
    parameters = jit_parameters_arn(scope, ssm_prefix)
    own = (
        {"StringEquals": {f"ssm:resourceTag/{TAG_INSTANCE_ARN}": "${ec2:SourceInstanceARN}"}}
        if own_instance_only
        else {}
    )
    return [
        _allow(
            "ReadOwnJitConfig", ["ssm:DeleteParameter", "ssm:GetParameter"], [parameters], **own
        ),
        _allow(
            "DecryptJitConfig",
            ["kms:Decrypt"],
            [kms_key_arn],
            StringEquals={"kms:ViaService": scope.service_host("ssm")},
            StringLike={"kms:EncryptionContext:PARAMETER_ARN": parameters},
        ),
    ]


def ecr_pull(scope: AwsScope, images: Sequence[str]) -> list[Statement]:
    """Pull ``images`` that live in ECR (nothing for images hosted elsewhere)."""
    repositories = sorted(
        {e.repository_arn(scope.partition) for i in images if (e := parse_ecr_image(i))}
    )
    if not repositories:
        return []
    return [
        # GetAuthorizationToken has no resource-level permissions.
        _allow("EcrLogin", ["ecr:GetAuthorizationToken"], "*"),
        _allow(
            "PullImages",
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            repositories,
        ),
    ]


def task_execution(
    scope: AwsScope, *, log_group_arns: Sequence[str], images: Sequence[str]
) -> list[Statement]:
    """What ECS needs to start the listener and runner tasks: write their logs, pull from ECR."""
    return [
        _allow(
            "WriteTaskLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [f"{arn}:*" for arn in log_group_arns],
        ),
        *ecr_pull(scope, images),
    ]
