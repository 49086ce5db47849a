"""IAM documents as plain data: least-privilege invariants, and AWS's grammar via moto's IAM."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gha_scalesets.components import iam
from gha_scalesets.components.aws_scope import AwsScope
from gha_scalesets.components.cache import queue_policy
from gha_scalesets.contract.names import METRICS_NAMESPACE

SCOPE = AwsScope(partition="aws", region="eu-west-1", account_id="123456789012")
KEY = "arn:aws:kms:eu-west-1:123456789012:key/k"
PREFIX = "/gha-scalesets/dev/ci/jit"
CLUSTER = "arn:aws:ecs:eu-west-1:123456789012:cluster/runners"
ECR_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/gha/listener:1.0"

# The only actions granted on "*": APIs without resource-level permissions, each with the
# condition that scopes it where AWS offers one.
WILDCARD_RESOURCE_ACTIONS: dict[str, dict[str, Any] | None] = {
    "ssm:DescribeParameters": None,
    "ec2:DescribeInstances": None,
    "ec2:DescribeInstanceStatus": None,
    "ecr:GetAuthorizationToken": None,
    "cloudwatch:PutMetricData": {"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
    "ecs:ListTasks": {"ArnEquals": {"ecs:cluster": CLUSTER}},
}


def _documents() -> dict[str, dict[str, Any]]:
    core = iam.listener_core(
        SCOPE,
        table_arn="arn:aws:dynamodb:eu-west-1:123456789012:table/runners",
        queue_arn="arn:aws:sqs:eu-west-1:123456789012:events",
        secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:github-AbCdEf",
        kms_key_arn=KEY,
        ssm_prefix=PREFIX,
    )
    ec2 = iam.ec2_listener(
        SCOPE,
        launch_template_id="lt-0123456789abcdef0",
        instance_types=["m7i.large", "m6i.large"],
        spot=True,
        subnet_ids=["subnet-1", "subnet-2"],
        security_group_ids=["sg-1"],
        runner_role_arn="arn:aws:iam::123456789012:role/runner",
        scale_set_ids=[7, 8],
        log_group_arn="arn:aws:logs:eu-west-1:123456789012:log-group:/gha/listener",
    )
    ecs = iam.ecs_listener(
        SCOPE,
        cluster_arn=CLUSTER,
        runner_family="gha-dev-ci-runner",
        pass_role_arns=["arn:aws:iam::123456789012:role/runner"],
    )
    runner = {
        own: iam.runner_jit_config(SCOPE, ssm_prefix=PREFIX, kms_key_arn=KEY, own_instance_only=own)
        for own in (True, False)
    }
    execution = iam.task_execution(
        SCOPE,
        log_group_arns=["arn:aws:logs:eu-west-1:123456789012:log-group:/gha/runners"],
        images=[ECR_IMAGE, "ghcr.io/actions/actions-runner:latest"],
    )
    return {
        "ec2-listener": iam.document(core + ec2 + iam.ecr_pull(SCOPE, [ECR_IMAGE])),
        "ecs-listener": iam.document(core + ecs),
        "ec2-runner": iam.document(runner[True]),
        "ecs-runner": iam.document(runner[False]),
        "task-execution": iam.document(execution),
    }


@pytest.mark.parametrize("name", sorted(_documents()))
def test_no_wildcard_actions_and_wildcard_resources_only_where_aws_has_no_other(name) -> None:
    allows = [s for s in _documents()[name]["Statement"] if s["Effect"] == "Allow"]
    assert allows
    for statement in allows:
        assert all("*" not in action for action in statement["Action"])
        if statement["Resource"] == "*":
            for action in statement["Action"]:
                assert action in WILDCARD_RESOURCE_ACTIONS, action
                assert statement.get("Condition") == WILDCARD_RESOURCE_ACTIONS[action]
        else:
            assert statement["Resource"] and all(
                r.startswith("arn:aws:") for r in statement["Resource"]
            )


def test_listener_uses_its_key_only_through_the_services_it_calls() -> None:
    statements = {s["Sid"]: s for s in _documents()["ecs-listener"]["Statement"]}
    key = statements["EncryptionKeyViaServices"]
    assert key["Resource"] == [KEY]
    assert key["Condition"] == {
        "StringEquals": {
            "kms:ViaService": [
                "dynamodb.eu-west-1.amazonaws.com",
                "secretsmanager.eu-west-1.amazonaws.com",
                "ssm.eu-west-1.amazonaws.com",
            ]
        }
    }
    assert statements["JitConfigParameters"]["Resource"] == [
        f"arn:aws:ssm:eu-west-1:123456789012:parameter{PREFIX}/*"
    ]


def _ec2_listener(*, spot: bool) -> dict[str, dict[str, Any]]:
    return {
        s["Sid"]: s
        for s in iam.ec2_listener(
            SCOPE,
            launch_template_id="lt-1",
            instance_types=["m7i.large", "c7i.large"],
            spot=spot,
            subnet_ids=["subnet-1"],
            security_group_ids=["sg-1"],
            runner_role_arn="arn:aws:iam::123456789012:role/runner",
            scale_set_ids=[7],
            log_group_arn="arn:aws:logs:eu-west-1:123456789012:log-group:/gha/listener",
        )
    }


def test_launches_cannot_leave_the_template_or_the_configured_instance_types() -> None:
    statements = _ec2_listener(spot=True)
    template = {"ArnEquals": {"ec2:LaunchTemplate": SCOPE.arn("ec2", "launch-template/lt-1")}}
    launches = [s for s in statements.values() if s["Action"] == ["ec2:RunInstances"]]
    assert launches and all(s["Condition"].items() >= template.items() for s in launches)
    instance = statements["LaunchRunnerInstances"]
    assert instance["Resource"] == [SCOPE.arn("ec2", "instance/*")]
    assert instance["Condition"]["StringEquals"] == {
        "ec2:InstanceType": ["c7i.large", "m7i.large"],  # exactly the configured list
        "ec2:MetadataHttpTokens": "required",
    }
    # The image (whoever owns it), the volumes and the security group come from the template
    # as they are: a launch that names others is refused.
    kept = statements["KeepTemplateImageVolumesAndGroup"]
    assert kept["Resource"] == [
        "arn:aws:ec2:eu-west-1::image/*",
        SCOPE.arn("ec2", "volume/*"),
        SCOPE.arn("ec2", "security-group/sg-1"),
    ]
    assert kept["Condition"]["Bool"] == {"ec2:IsLaunchTemplateResource": "true"}
    granted = {r for s in launches for r in s["Resource"]}
    assert not any(r.endswith(":subnet/*") or r.endswith(":security-group/*") for r in granted)


def test_spot_may_create_only_its_own_service_linked_role() -> None:
    statement = _ec2_listener(spot=True)["CreateSpotServiceLinkedRole"]
    assert statement["Action"] == ["iam:CreateServiceLinkedRole"]
    assert statement["Resource"] == [
        "arn:aws:iam::123456789012:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"
    ]
    assert statement["Condition"] == {"StringEquals": {"iam:AWSServiceName": "spot.amazonaws.com"}}
    on_demand = _ec2_listener(spot=False)
    assert "CreateSpotServiceLinkedRole" not in on_demand
    assert all("spot" not in r for s in on_demand.values() for r in s["Resource"])


def test_images_outside_ecr_need_no_ecr_permissions() -> None:
    assert iam.ecr_pull(SCOPE, ["ghcr.io/acme/listener:1", "docker.io/library/python:3"]) == []


def test_ecs_trust_policy_is_limited_to_this_account() -> None:
    (statement,) = iam.assume_role("ecs-tasks.amazonaws.com", SCOPE)["Statement"]
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": "arn:aws:ecs:eu-west-1:123456789012:*"},
    }


def test_every_document_passes_the_iam_policy_grammar(boto_client) -> None:
    client = boto_client("iam")
    # The validator is live: a malformed document is refused.
    with pytest.raises(ClientError, match="MalformedPolicyDocument"):
        client.create_policy(
            PolicyName="broken",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "ec2", "Resource": "*"}],
                }
            ),
        )
    for name, document in _documents().items():
        client.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))
    for service in ("ec2.amazonaws.com", "ecs-tasks.amazonaws.com"):
        client.create_role(
            RoleName=service.split(".")[0],
            AssumeRolePolicyDocument=json.dumps(iam.assume_role(service, SCOPE)),
        )
    assert len(client.list_policies(Scope="Local")["Policies"]) == len(_documents())


def test_queue_policy_admits_only_the_rule_and_only_over_tls() -> None:
    rule = "arn:aws:events:eu-west-1:123456789012:rule/state"
    allow, deny = queue_policy("arn:aws:sqs:eu-west-1:123456789012:events", rule)["Statement"]
    assert (allow["Action"], allow["Condition"]) == (
        "sqs:SendMessage",
        {"ArnEquals": {"aws:SourceArn": rule}},
    )
    assert (deny["Effect"], deny["Condition"]) == (
        "Deny",
        {"Bool": {"aws:SecureTransport": "false"}},
    )
