"""Pulumi components: the scale-set listener on EC2, ECS or Kubernetes."""

if __name__ != "gha_scalesets.components":  # one module, one name: never a top-level "components"
    raise ImportError(f"{__name__!r} is gha_scalesets.components: import it by that name")

from gha_scalesets.components.args import (
    AlarmThresholds,
    Ec2Options,
    EcsOptions,
    K8sOptions,
    ListenerConfigError,
    ListenerScaleSet,
    PacingOptions,
    ScaleSetListenerArgs,
)
from gha_scalesets.components.listener import ScaleSetListener

__all__ = [
    "AlarmThresholds",
    "Ec2Options",
    "EcsOptions",
    "K8sOptions",
    "ListenerConfigError",
    "ListenerScaleSet",
    "PacingOptions",
    "ScaleSetListener",
    "ScaleSetListenerArgs",
]
