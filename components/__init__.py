"""Pulumi components: the scale-set listener on EC2, ECS or Kubernetes."""

from components.args import (
    AlarmThresholds,
    Ec2Options,
    EcsOptions,
    K8sOptions,
    ListenerConfigError,
    ListenerScaleSet,
    ScaleSetListenerArgs,
)
from components.listener import ScaleSetListener

__all__ = [
    "AlarmThresholds",
    "Ec2Options",
    "EcsOptions",
    "K8sOptions",
    "ListenerConfigError",
    "ListenerScaleSet",
    "ScaleSetListener",
    "ScaleSetListenerArgs",
]
