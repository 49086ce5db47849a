"""The platform setting: one CPU architecture for the listener image, its hosts and the runners.

``ScaleSetListenerArgs.platform`` names it as images do (``linux/amd64``, ``linux/arm64``, what
``docker buildx build --platform`` takes); ECS task definitions, the default listener AMI and the
EC2 instance types follow from it (components/validation.py checks the instance types).
"""

from __future__ import annotations

import re

PLATFORMS = ("linux/amd64", "linux/arm64")
DEFAULT_PLATFORM = "linux/amd64"

_ECS_CPU_ARCHITECTURE = {"linux/amd64": "X86_64", "linux/arm64": "ARM64"}
_AL2023_ARCHITECTURE = {"linux/amd64": "x86_64", "linux/arm64": "arm64"}
# Graviton families carry a "g" right after their generation (m7g, c6gn, t4g, x2gd, im4gn,
# hpc7g, g5g); a1 is the first Graviton. Every other family is x86-64.
_GRAVITON_FAMILY = re.compile(r"^(a1|[a-z]+\d+g[a-z]*)$")


def ecs_cpu_architecture(platform: str) -> str:
    """The ``runtimePlatform.cpuArchitecture`` of ECS task definitions for ``platform``."""
    return _ECS_CPU_ARCHITECTURE[platform]


def al2023_ami(platform: str) -> str:
    """The latest Amazon Linux 2023 AMI for ``platform``, resolved by EC2 at launch."""
    architecture = _AL2023_ARCHITECTURE[platform]
    return (
        f"resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{architecture}"
    )


def instance_type_platform(instance_type: str) -> str:
    """The platform of EC2 instance type ``instance_type`` (``m7g.large`` -> ``linux/arm64``)."""
    family = instance_type.partition(".")[0].lower()
    return "linux/arm64" if _GRAVITON_FAMILY.match(family) else "linux/amd64"
