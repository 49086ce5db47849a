"""The EC2 runtime under Pulumi mocks: templates, the listener group, IAM, the listener settings."""

from __future__ import annotations

import json
import subprocess

from gha_scalesets.components import Ec2Options
from gha_scalesets.components.user_data import ENV_FILE
from tests.support.components import (
    AWS_LISTENER_TYPES,
    LT,
    ROLE_POLICY,
    RUNNER_AMI,
    SUBNETS,
    TOKEN,
    assert_publishes_what_the_alarms_read,
    env_file,
    policy,
    statements_by_sid,
    user_data,
)
from tests.support.pulumi_mocks import ACCOUNT, REGION, SCALE_SET_TYPE

EC2_TYPES = AWS_LISTENER_TYPES | {
    "aws:autoscaling/group:Group",
    "aws:iam/instanceProfile:InstanceProfile",
    LT,
}


def test_declares_exactly_the_ec2_resources(deploy, recorder) -> None:
    outputs = deploy("ec2")

    assert recorder.types() == EC2_TYPES
    assert len(recorder.of_type(LT)) == 2
    assert recorder.of_type("aws:ecs/service:Service") == []
    group = recorder.one("aws:autoscaling/group:Group")
    assert outputs["listener_id"] == group.state["name"]
    assert outputs["runner_template"] == "ci-runner-id"


def test_launch_templates_require_imdsv2_private_addresses_and_encrypted_disks(
    deploy, recorder
) -> None:
    deploy("ec2")

    groups = {r.name: r.id for r in recorder.of_type("aws:ec2/securityGroup:SecurityGroup")}
    for template in recorder.of_type(LT):
        metadata = template.inputs["metadataOptions"]
        assert metadata["httpTokens"] == "required"
        assert metadata["httpPutResponseHopLimit"] == 1
        (disk,) = template.inputs["blockDeviceMappings"]
        assert disk["ebs"]["encrypted"] == "true"
        assert TOKEN not in user_data(template)
    (nic,) = recorder.one(LT, "ci-listener").inputs["networkInterfaces"]
    assert nic["associatePublicIpAddress"] == "false"
    assert nic["securityGroups"] == [groups["ci-listener"]]
    # The listener names the subnet per launch: a template interface would conflict with it.
    runner_inputs = recorder.one(LT, "ci-runner").inputs
    assert "networkInterfaces" not in runner_inputs
    assert runner_inputs["vpcSecurityGroupIds"] == [groups["ci-runner"]]
    statements = statements_by_sid(policy(recorder.one(ROLE_POLICY, "ci-listener").inputs))
    assert statements["NoPublicAddresses"] == {
        "Sid": "NoPublicAddresses",
        "Effect": "Deny",
        "Action": "ec2:RunInstances",
        "Resource": f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-interface/*",
        "Condition": {"Bool": {"ec2:AssociatePublicIpAddress": "true"}},
    }
    runner = recorder.one(LT, "ci-runner")
    assert runner.inputs["metadataOptions"]["instanceMetadataTags"] == "enabled"
    assert runner.inputs["instanceInitiatedShutdownBehavior"] == "terminate"
    profile = recorder.one("aws:iam/instanceProfile:InstanceProfile", "ci-runner")
    assert runner.inputs["iamInstanceProfile"] == {"arn": profile.state["arn"]}
    bootstrap = user_data(runner)
    assert "/gha-scalesets/dev/ci/jit" in bootstrap
    assert f"--region {REGION}" in bootstrap
    listener = recorder.one(LT, "ci-listener")
    assert listener.inputs["metadataOptions"]["instanceMetadataTags"] == "disabled"


def test_security_groups_allow_no_inbound_traffic(deploy, recorder) -> None:
    deploy("ec2")

    groups = {r.name: r.inputs for r in recorder.of_type("aws:ec2/securityGroup:SecurityGroup")}
    assert set(groups) == {"ci-listener", "ci-runner"}
    assert all(not g.get("ingress") for g in groups.values())
    (https,) = groups["ci-listener"]["egress"]
    assert (https["protocol"], https["fromPort"], https["toPort"]) == ("tcp", 443, 443)


def test_listener_group_is_one_self_healing_instance(deploy, recorder) -> None:
    deploy("ec2")

    group = recorder.one("aws:autoscaling/group:Group").inputs
    assert (group["minSize"], group["maxSize"], group["desiredCapacity"]) == (1, 1, 1)
    assert group["vpcZoneIdentifiers"] == SUBNETS
    assert group["launchTemplate"] == {"id": "ci-listener-id", "version": "3"}
    assert group["healthCheckType"] == "EC2"
    refresh = group["instanceRefresh"]
    assert refresh["strategy"] == "Rolling"
    assert refresh["preferences"]["minHealthyPercentage"] == 0  # one replica: replaced


def test_listener_replicas_spread_over_the_subnets_and_refresh_one_at_a_time(
    deploy, recorder
) -> None:
    deploy("ec2", replicas=2)

    group = recorder.one("aws:autoscaling/group:Group").inputs
    assert (group["minSize"], group["maxSize"], group["desiredCapacity"]) == (2, 2, 2)
    assert group["vpcZoneIdentifiers"] == SUBNETS  # the group balances them across zones
    assert group["instanceRefresh"]["preferences"]["minHealthyPercentage"] == 50


def test_listener_boot_script_runs_the_image_with_settings_the_listener_accepts(
    deploy, recorder, settings_from_env, tmp_path
) -> None:
    outputs = deploy("ec2")

    script = user_data(recorder.one(LT, "ci-listener"))
    (tmp_path / "boot.sh").write_text(script)
    subprocess.run(["bash", "-n", str(tmp_path / "boot.sh")], check=True)
    assert f"--env-file {ENV_FILE}" in script
    for flag in ("--network host", "--read-only", "--cap-drop ALL", "no-new-privileges"):
        assert flag in script
    assert "ghcr.io/acme/gha-scalesets-listener:1.0" in script
    assert "awslogs-group=/gha-scalesets/dev/ci/listener" in script
    assert "docker login" not in script  # not an ECR image

    settings = settings_from_env(env_file(script))
    # ids follow registration order, which the SDK does not fix: match them by name
    ids = {r.state["name"]: r.state["scale_set_id"] for r in recorder.of_type(SCALE_SET_TYPE)}
    assert settings.runtime == "ec2"
    assert settings.github_config_url == "https://github.com/acme"
    assert settings.credentials[0].secret_arn == outputs["secret_arn"]
    assert settings.registry.table_name == outputs["table_name"]
    assert settings.registry.region == REGION
    assert settings.aws.region == REGION
    assert [
        (s.scale_set_id, s.name, s.min_runners, s.max_runners) for s in settings.scale_sets
    ] == [
        (ids["linux-x64"], "linux-x64", 0, 20),
        (ids["gpu"], "gpu", 1, 4),
    ]
    ec2 = settings.ec2
    assert ec2.launch_template_id == outputs["runner_template"]
    assert ec2.subnet_ids == SUBNETS
    assert ec2.events_queue_url == outputs["queue_url"]
    assert ec2.kms_key_id == outputs["kms_key_arn"]
    assert ec2.ssm_prefix == "/gha-scalesets/dev/ci/jit"
    assert ec2.instance_types == ["m7i.large", "m6i.large"]
    assert settings.metrics_port == 9102
    assert_publishes_what_the_alarms_read(settings, recorder)


def test_ecr_listener_image_is_pulled_after_a_scoped_login(deploy, recorder) -> None:
    image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/tools/listener:2.0"
    deploy("ec2", listener_image=image)

    script = user_data(recorder.one(LT, "ci-listener"))
    assert f"docker login --username AWS --password-stdin {ACCOUNT}.dkr.ecr" in script
    statements = statements_by_sid(policy(recorder.one(ROLE_POLICY, "ci-listener").inputs))
    assert statements["PullImages"]["Resource"] == [
        f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/tools/listener"
    ]


def test_listener_role_launches_only_through_its_template_and_ends_only_its_runners(
    deploy, recorder
) -> None:
    outputs = deploy("ec2")

    role = recorder.one("aws:iam/role:Role", "ci-listener")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "ec2.amazonaws.com"}
    statements = statements_by_sid(policy(recorder.one(ROLE_POLICY, "ci-listener").inputs))
    template_arn = f"arn:aws:ec2:{REGION}:{ACCOUNT}:launch-template/{outputs['runner_template']}"
    launches = [s for s in statements.values() if s["Action"] == ["ec2:RunInstances"]]
    assert {s["Sid"] for s in launches} == {
        "LaunchRunnerInstances",
        "KeepTemplateImageVolumesAndGroup",
        "LaunchIntoRunnerSubnets",
    }
    for launch in launches:
        assert launch["Condition"]["ArnEquals"] == {"ec2:LaunchTemplate": template_arn}
    assert statements["LaunchRunnerInstances"]["Condition"]["StringEquals"] == {
        "ec2:InstanceType": ["m6i.large", "m7i.large"],  # Ec2Options.runner_instance_types
        "ec2:MetadataHttpTokens": "required",
    }
    runner_group = recorder.one("aws:ec2/securityGroup:SecurityGroup", "ci-runner").id
    assert statements["KeepTemplateImageVolumesAndGroup"]["Resource"] == [
        f"arn:aws:ec2:{REGION}::image/*",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/*",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{runner_group}",
    ]
    assert statements["KeepTemplateImageVolumesAndGroup"]["Condition"]["Bool"] == {
        "ec2:IsLaunchTemplateResource": "true"
    }
    assert statements["LaunchIntoRunnerSubnets"]["Resource"] == [
        template_arn,
        *(f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{s}" for s in SUBNETS),
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-interface/*",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:spot-instances-request/*",
    ]
    ids = sorted(str(r.state["scale_set_id"]) for r in recorder.of_type(SCALE_SET_TYPE))
    terminate = statements["TerminateOwnRunners"]
    assert sorted(terminate["Condition"]["StringEquals"]["aws:ResourceTag/gha-scaleset-id"]) == ids
    runner_role = recorder.one("aws:iam/role:Role", "ci-runner").state["arn"]
    assert statements["PassRunnerRole"]["Resource"] == [runner_role]
    assert statements["PassRunnerRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}
    }
    table = recorder.one("aws:dynamodb/table:Table").state["arn"]
    assert statements["RunnerRegistryTable"]["Resource"] == [table]
    events = next(r for r in recorder.of_type("aws:sqs/queue:Queue") if r.name == "ci-events")
    assert statements["RuntimeStateEvents"]["Resource"] == [events.state["arn"]]
    secret = recorder.one("aws:secretsmanager/secret:Secret").state["arn"]
    assert statements["GitHubCredential"]["Resource"] == [secret]
    logs = recorder.one("aws:cloudwatch/logGroup:LogGroup").state["arn"]
    assert statements["ListenerLogs"]["Resource"] == [f"{logs}:*"]


def test_listener_role_may_create_the_spot_service_linked_role_and_nothing_else(
    deploy, recorder
) -> None:
    # Spot is on by default: in a fresh account EC2 creates the spot service-linked role at
    # the first spot launch, with the caller's permission.
    deploy("ec2")

    statements = statements_by_sid(policy(recorder.one(ROLE_POLICY, "ci-listener").inputs))
    role = statements["CreateSpotServiceLinkedRole"]
    assert role["Action"] == ["iam:CreateServiceLinkedRole"]
    assert role["Resource"] == [
        f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"
    ]
    assert role["Condition"] == {"StringEquals": {"iam:AWSServiceName": "spot.amazonaws.com"}}
    iam_actions = {a for s in statements.values() for a in s["Action"] if a.startswith("iam:")}
    assert iam_actions == {"iam:CreateServiceLinkedRole", "iam:PassRole"}


def test_on_demand_runners_get_no_spot_permissions(deploy, recorder) -> None:
    deploy("ec2", ec2=Ec2Options(runner_ami_id=RUNNER_AMI, spot=False))

    statements = statements_by_sid(policy(recorder.one(ROLE_POLICY, "ci-listener").inputs))
    assert "CreateSpotServiceLinkedRole" not in statements
    assert not any("spot" in r for s in statements.values() for r in s["Resource"])
    alarms = {r.name for r in recorder.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert "ci-spot-unavailable" not in alarms


def test_runner_role_reads_only_the_jit_parameter_of_its_own_instance(deploy, recorder) -> None:
    outputs = deploy("ec2")

    statements = statements_by_sid(policy(recorder.one(ROLE_POLICY, "ci-runner").inputs))
    assert set(statements) == {"ReadOwnJitConfig", "DecryptJitConfig"}
    read = statements["ReadOwnJitConfig"]
    assert read["Action"] == ["ssm:DeleteParameter", "ssm:GetParameter"]
    assert read["Resource"] == [
        f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/gha-scalesets/dev/ci/jit/*"
    ]
    assert read["Condition"] == {
        "StringEquals": {"ssm:resourceTag/gha-scaleset-instance-arn": "${ec2:SourceInstanceARN}"}
    }
    decrypt = statements["DecryptJitConfig"]
    assert decrypt["Resource"] == [outputs["kms_key_arn"]]
    assert decrypt["Condition"]["StringEquals"] == {"kms:ViaService": f"ssm.{REGION}.amazonaws.com"}
