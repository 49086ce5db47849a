"""What AWS and Kubernetes accept as names, identifiers and sizes, checked before ``pulumi up``.

Each function answers for one value and says nothing about where it came from; the messages
naming keys are :mod:`components.validation`'s.
"""

from __future__ import annotations

import re

# ARNs: arn:<partition>:<service>:<region>:<account>:<resource>.
_ARN = re.compile(r"^arn:aws(-[a-z]+)*:(?P<service>[a-z0-9-]+):[a-z0-9-]*:(\d{12})?:(?P<res>.+)$")
_AMI = re.compile(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$")
_VPC = re.compile(r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$")
_SUBNET = re.compile(r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$")
# family[-variant].size: m7i.large, m7i-flex.large, u7i-12tb.224xlarge, m7i.metal-24xl
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9][a-z0-9-]*$")
_DEVICE = re.compile(r"^/dev/[a-z0-9]+$")
# An image reference: registry/path/name[:tag][@digest], nothing else (no spaces, no scheme).
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?$")

# gp3 volumes: 1 GiB to 16 TiB; the runner AMIs' root snapshots need 8.
VOLUME_GB = (8, 16384)

# Fargate's CPU units and the memory (MiB) each allows.
FARGATE_SIZES: dict[int, range] = {
    256: range(512, 2048 + 1, 512),
    512: range(1024, 4096 + 1, 1024),
    1024: range(2048, 8192 + 1, 1024),
    2048: range(4096, 16384 + 1, 1024),
    4096: range(8192, 30720 + 1, 1024),
    8192: range(16384, 61440 + 1, 4096),
    16384: range(32768, 122880 + 1, 8192),
}

# Kubernetes: DNS-1123 labels (namespaces), DNS-1035 labels (Services), label keys and values,
# and resource quantities (500m, 1.5Gi, 2).
_DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_QUANTITY = re.compile(r"^(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][-+]?\d+)?$")
TOLERATION_KEYS = frozenset({"key", "operator", "value", "effect", "tolerationSeconds"})
TOLERATION_OPERATORS = ("Equal", "Exists")
TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def arn_service(value: str) -> tuple[str, str] | None:
    """(service, resource) of an ARN, or None when ``value`` is not shaped as one."""
    match = _ARN.match(value)
    return (match["service"], match["res"]) if match else None


def is_kms_key_arn(value: str) -> bool:
    parts = arn_service(value)
    return parts is not None and parts[0] == "kms" and parts[1].startswith("key/")


def is_ecs_cluster_arn(value: str) -> bool:
    parts = arn_service(value)
    return parts is not None and parts[0] == "ecs" and parts[1].startswith("cluster/")


def is_ami(value: str) -> bool:
    """An AMI id, or an SSM parameter EC2 resolves to one at launch (``resolve:ssm:...``)."""
    return bool(_AMI.match(value)) or (value.startswith("resolve:ssm:") and len(value) > 12)


def is_vpc_id(value: str) -> bool:
    return bool(_VPC.match(value))


def is_subnet_id(value: str) -> bool:
    return bool(_SUBNET.match(value))


def is_instance_type(value: str) -> bool:
    return bool(_INSTANCE_TYPE.match(value))


def is_device_name(value: str) -> bool:
    return bool(_DEVICE.match(value))


def is_image(value: str) -> bool:
    return len(value) <= 512 and "://" not in value and bool(_IMAGE.match(value.lower()))


def fargate_memory_problem(cpu: object, memory: object) -> str | None:
    """Why (cpu, memory) is no Fargate size, or None."""
    if cpu not in FARGATE_SIZES:
        return (
            f"{cpu!r} CPU units is no Fargate size: use one of {', '.join(map(str, FARGATE_SIZES))}"
        )
    allowed = FARGATE_SIZES[cpu]
    if memory in allowed:
        return None
    return (
        f"{memory!r} MiB does not go with {cpu} CPU units on Fargate: use {allowed.start} to"
        f" {allowed[-1]} in steps of {allowed.step}"
    )


def is_fargate_memory(memory: object) -> bool:
    """Whether ``memory`` goes with some Fargate CPU size."""
    return any(memory in sizes for sizes in FARGATE_SIZES.values())


def is_dns_label(value: str, max_length: int = 63) -> bool:
    """A DNS-1123 label: what a namespace name must be."""
    return len(value) <= max_length and bool(_DNS_1123_LABEL.match(value))


def is_dns_1035_label(value: str, max_length: int = 63) -> bool:
    """A DNS-1035 label (starts with a letter): what a Service name must be."""
    return len(value) <= max_length and bool(_DNS_1035_LABEL.match(value))


def is_qualified_name(value: str) -> bool:
    """A label key or resource name: ``[prefix/]name``, prefix a DNS subdomain."""
    prefix, _, name = value.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_1123_SUBDOMAIN.match(prefix)):
        return False
    return len(name) <= 63 and bool(_LABEL_NAME.match(name))


def is_label_value(value: str) -> bool:
    return value == "" or (len(value) <= 63 and bool(_LABEL_NAME.match(value)))


def is_quantity(value: object) -> bool:
    return isinstance(value, str) and bool(_QUANTITY.match(value))
