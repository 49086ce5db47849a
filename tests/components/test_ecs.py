"""The ECS runtime under Pulumi mocks: cluster, service, task definitions, IAM, settings."""

from __future__ import annotations

import json

from gha_scalesets.components import EcsOptions
from tests.support.components import (
    AWS_LISTENER_TYPES,
    ECS_RUNNER_IMAGE,
    ROLE_POLICY,
    SUBNETS,
    TASK_DEFINITION,
    TOKEN,
    assert_publishes_what_the_alarms_read,
    containers,
    policy,
    statements_by_sid,
)
from tests.support.pulumi_mocks import ACCOUNT, REGION

ECS_TYPES = AWS_LISTENER_TYPES | {
    "aws:ecs/cluster:Cluster",
    "aws:ecs/service:Service",
    TASK_DEFINITION,
}
EXISTING_CLUSTER = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/shared"


def test_declares_exactly_the_ecs_resources(deploy, recorder) -> None:
    outputs = deploy("ecs")

    assert recorder.types() == ECS_TYPES
    assert {r.name for r in recorder.of_type(TASK_DEFINITION)} == {"ci-listener", "ci-runner"}
    assert {r.name for r in recorder.of_type("aws:iam/role:Role")} == {
        "ci-listener",
        "ci-runner",
        "ci-task-execution",
    }
    assert outputs["listener_id"] == recorder.one("aws:ecs/service:Service").id
    assert outputs["runner_template"] == recorder.one(TASK_DEFINITION, "ci-runner").state["arn"]


def test_listener_service_is_one_private_fargate_task(deploy, recorder) -> None:
    deploy("ecs")

    service = recorder.one("aws:ecs/service:Service").inputs
    cluster = recorder.one("aws:ecs/cluster:Cluster")
    assert service["cluster"] == cluster.state["arn"]
    assert service["taskDefinition"] == recorder.one(TASK_DEFINITION, "ci-listener").state["arn"]
    assert (service["desiredCount"], service["launchType"]) == (1, "FARGATE")
    listener_group = recorder.one("aws:ec2/securityGroup:SecurityGroup", "ci-listener").id
    assert service["networkConfiguration"] == {
        "subnets": SUBNETS,
        "securityGroups": [listener_group],
        "assignPublicIp": False,
    }
    # Rolling: the new task stands by until the old one releases its leases on SIGTERM.
    assert (service["deploymentMinimumHealthyPercent"], service["deploymentMaximumPercent"]) == (
        100,
        200,
    )
    assert service["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert cluster.inputs["settings"] == [{"name": "containerInsights", "value": "enabled"}]


def test_listener_replicas_are_the_service_desired_count(deploy, recorder) -> None:
    deploy("ecs", replicas=2)

    service = recorder.one("aws:ecs/service:Service").inputs
    assert service["desiredCount"] == 2
    assert service["networkConfiguration"]["subnets"] == SUBNETS  # Fargate spreads the zones


def test_listener_container_is_hardened_and_configured_for_ecs(
    deploy, recorder, settings_from_env
) -> None:
    outputs = deploy("ecs")

    task = recorder.one(TASK_DEFINITION, "ci-listener")
    assert task.inputs["requiresCompatibilities"] == ["FARGATE"]
    assert task.inputs["networkMode"] == "awsvpc"
    assert (
        task.inputs["taskRoleArn"] == recorder.one("aws:iam/role:Role", "ci-listener").state["arn"]
    )
    (container,) = containers(recorder, "ci-listener")
    assert container["user"] == "10001"
    assert container["readonlyRootFilesystem"] is True
    assert container["linuxParameters"]["capabilities"] == {"drop": ["ALL"]}
    assert (
        container["logConfiguration"]["options"]["awslogs-group"]
        == "/gha-scalesets/dev/ci/listener"
    )
    assert TOKEN not in json.dumps(container)

    settings = settings_from_env({e["name"]: e["value"] for e in container["environment"]})
    runner_group = recorder.one("aws:ec2/securityGroup:SecurityGroup", "ci-runner").id
    assert settings.runtime == "ecs"
    assert settings.credentials[0].secret_arn == outputs["secret_arn"]
    assert settings.registry.table_name == outputs["table_name"]
    assert [(s.name, s.min_runners, s.max_runners) for s in settings.scale_sets] == [
        ("linux-x64", 0, 20),
        ("gpu", 1, 4),
    ]
    ecs = settings.ecs
    assert ecs.cluster == recorder.one("aws:ecs/cluster:Cluster").state["arn"]
    assert ecs.task_definition == outputs["runner_template"]
    assert ecs.container_name == "runner"
    assert (ecs.subnet_ids, ecs.security_group_ids) == (SUBNETS, [runner_group])
    assert ecs.launch_type == "FARGATE"
    assert ecs.assign_public_ip is False  # RunTask: assignPublicIp DISABLED
    assert ecs.events_queue_url == outputs["queue_url"]
    assert (ecs.ssm_prefix, ecs.kms_key_id) == ("/gha-scalesets/dev/ci/jit", outputs["kms_key_arn"])
    assert_publishes_what_the_alarms_read(settings, recorder)


def test_runner_task_uses_the_runner_role_and_its_own_log_group(deploy, recorder) -> None:
    deploy("ecs")

    task = recorder.one(TASK_DEFINITION, "ci-runner").inputs
    assert task["family"] == "gha-dev-ci-runner"
    assert task["taskRoleArn"] == recorder.one("aws:iam/role:Role", "ci-runner").state["arn"]
    execution = recorder.one("aws:iam/role:Role", "ci-task-execution").state["arn"]
    assert task["executionRoleArn"] == execution
    (container,) = containers(recorder, "ci-runner")
    assert container["name"] == "runner"
    assert container["image"] == ECS_RUNNER_IMAGE
    assert container["entryPoint"] == ["/bin/bash", "-c"]
    (entrypoint,) = container["command"]
    assert "aws ssm get-parameter --region eu-west-1" in entrypoint
    assert "$GHA_JIT_PARAMETER_PATH" in entrypoint
    assert (
        container["logConfiguration"]["options"]["awslogs-group"] == "/gha-scalesets/dev/ci/runners"
    )


def test_listener_role_runs_and_stops_only_runner_tasks_in_its_cluster(deploy, recorder) -> None:
    deploy("ecs")

    role = recorder.one("aws:iam/role:Role", "ci-listener")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    statements = statements_by_sid(policy(recorder.one(ROLE_POLICY, "ci-listener").inputs))
    cluster = recorder.one("aws:ecs/cluster:Cluster").state
    in_cluster = {"ArnEquals": {"ecs:cluster": cluster["arn"]}}
    assert statements["RunRunnerTasks"]["Resource"] == [
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/gha-dev-ci-runner:*"
    ]
    assert statements["RunRunnerTasks"]["Condition"] == in_cluster
    assert statements["ManageRunnerTasks"]["Action"] == ["ecs:DescribeTasks", "ecs:StopTask"]
    assert statements["ManageRunnerTasks"]["Resource"] == [
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{cluster['name']}/*"
    ]
    assert statements["ManageRunnerTasks"]["Condition"] == in_cluster
    roles = {r.name: r.state["arn"] for r in recorder.of_type("aws:iam/role:Role")}
    assert statements["PassRunnerTaskRoles"]["Resource"] == [
        roles["ci-runner"],
        roles["ci-task-execution"],
    ]
    assert statements["PassRunnerTaskRoles"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    assert "LaunchRunnersFromTemplate" not in statements  # no EC2 rights on ECS


def test_runner_task_role_is_limited_to_this_listeners_jit_parameters(deploy, recorder) -> None:
    deploy("ecs")

    statements = statements_by_sid(policy(recorder.one(ROLE_POLICY, "ci-runner").inputs))
    read = statements["ReadOwnJitConfig"]
    assert read["Resource"] == [
        f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/gha-scalesets/dev/ci/jit/*"
    ]
    assert "Condition" not in read  # task credentials carry no per-task key (see iam.py)


def test_execution_role_writes_only_its_logs_and_pulls_only_from_its_ecr_repository(
    deploy, recorder
) -> None:
    image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/gha/listener:1"
    deploy("ecs", listener_image=image)

    statements = statements_by_sid(policy(recorder.one(ROLE_POLICY, "ci-task-execution").inputs))
    groups = sorted(
        f"{r.state['arn']}:*" for r in recorder.of_type("aws:cloudwatch/logGroup:LogGroup")
    )
    assert sorted(statements["WriteTaskLogs"]["Resource"]) == groups
    # The runner image is on ghcr.io: only the listener's repository is granted.
    assert statements["PullImages"]["Resource"] == [
        f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/gha/listener"
    ]


def test_an_existing_cluster_is_used_and_its_events_are_selected(deploy, recorder) -> None:
    deploy("ecs", ecs=EcsOptions(runner_image=ECS_RUNNER_IMAGE, cluster_arn=EXISTING_CLUSTER))

    assert recorder.of_type("aws:ecs/cluster:Cluster") == []
    assert recorder.one("aws:ecs/service:Service").inputs["cluster"] == EXISTING_CLUSTER
    pattern = json.loads(recorder.one("aws:cloudwatch/eventRule:EventRule").inputs["eventPattern"])
    assert pattern == {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {"clusterArn": [EXISTING_CLUSTER]},
    }
