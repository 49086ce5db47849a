"""One platform setting: the ECS task architecture, the EC2 AMI and instance types follow it."""

from __future__ import annotations

import pytest

from gha_scalesets.components import Ec2Options, ListenerConfigError, ScaleSetListener
from gha_scalesets.components.platforms import instance_type_platform
from tests.support.components import RUNNER_AMI, listener_args
from tests.support.pulumi_mocks import run

TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
AL2023 = "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-"
GRAVITON = Ec2Options(
    runner_ami_id=RUNNER_AMI,
    runner_instance_types=("m7g.large", "c7gn.xlarge"),
    listener_instance_type="t4g.small",
)


def _architectures(recorder) -> dict[str, str]:
    return {
        task.name: task.inputs["runtimePlatform"]["cpuArchitecture"]
        for task in recorder.of_type(TASK_DEFINITION)
    }


@pytest.mark.parametrize(
    ("platform", "architecture"), [("linux/amd64", "X86_64"), ("linux/arm64", "ARM64")]
)
def test_ecs_task_definitions_run_on_the_platforms_architecture(
    deploy, recorder, platform, architecture
) -> None:
    deploy("ecs", platform=platform)

    assert _architectures(recorder) == {"ci-listener": architecture, "ci-runner": architecture}


def test_ecs_defaults_to_amd64(deploy, recorder) -> None:
    deploy("ecs")

    assert set(_architectures(recorder).values()) == {"X86_64"}


def test_ec2_on_arm64_boots_the_listener_from_the_arm64_amazon_linux(deploy, recorder) -> None:
    deploy("ec2", platform="linux/arm64", ec2=GRAVITON)

    template = recorder.one(LAUNCH_TEMPLATE, "ci-listener").inputs
    assert (template["imageId"], template["instanceType"]) == (AL2023 + "arm64", "t4g.small")


def test_ec2_defaults_to_the_amd64_amazon_linux(deploy, recorder) -> None:
    deploy("ec2")

    assert recorder.one(LAUNCH_TEMPLATE, "ci-listener").inputs["imageId"] == AL2023 + "x86_64"


def test_an_explicit_listener_ami_is_kept(deploy, recorder) -> None:
    deploy("ec2", ec2=Ec2Options(runner_ami_id=RUNNER_AMI, listener_ami_id="ami-0fedcba9876543210"))

    assert recorder.one(LAUNCH_TEMPLATE, "ci-listener").inputs["imageId"] == "ami-0fedcba9876543210"


def _problems(runtime: str, **overrides) -> str:
    with pytest.raises(ListenerConfigError) as caught:
        run(lambda: {"id": ScaleSetListener("ci", listener_args(runtime, **overrides)).listener_id})
    return str(caught.value)


def test_instance_types_of_another_architecture_are_refused_each_by_name(recorder) -> None:
    message = _problems("ec2", platform="linux/arm64")  # the default types are x86

    assert (
        "ec2.runner_instance_types[0]: m7i.large is a linux/amd64 type but platform is"
        " linux/arm64: use Graviton types such as m7g.large, or set platform to match" in message
    )
    assert "ec2.runner_instance_types[1]: m6i.large is a linux/amd64 type" in message
    assert "ec2.listener_instance_type: t3.small is a linux/amd64 type" in message


def test_graviton_types_on_amd64_are_refused(recorder) -> None:
    message = _problems("ec2", ec2=GRAVITON)

    assert (
        "ec2.runner_instance_types[0]: m7g.large is a linux/arm64 type but platform is"
        " linux/amd64: use x86 types such as m7i.large" in message
    )
    assert "ec2.listener_instance_type: t4g.small is a linux/arm64 type" in message


def test_an_unknown_platform_is_refused(recorder) -> None:
    assert "platform: 'linux/arm/v7' is not supported: use one of linux/amd64, linux/arm64" in (
        _problems("ecs", platform="linux/arm/v7")
    )


@pytest.mark.parametrize(
    ("instance_type", "platform"),
    [
        ("m7g.large", "linux/arm64"),
        ("c6gn.16xlarge", "linux/arm64"),
        ("t4g.nano", "linux/arm64"),
        ("x2gd.medium", "linux/arm64"),
        ("im4gn.large", "linux/arm64"),
        ("g5g.xlarge", "linux/arm64"),
        ("a1.large", "linux/arm64"),
        ("M8G.large", "linux/arm64"),
        ("m7i.large", "linux/amd64"),
        ("m6a.large", "linux/amd64"),
        ("t3.small", "linux/amd64"),
        ("g5.xlarge", "linux/amd64"),
        ("gr6.4xlarge", "linux/amd64"),
        ("c7i-flex.large", "linux/amd64"),
        ("u-6tb1.metal", "linux/amd64"),
    ],
)
def test_instance_type_architecture(instance_type, platform) -> None:
    assert instance_type_platform(instance_type) == platform
