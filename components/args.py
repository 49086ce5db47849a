"""Inputs of :class:`components.ScaleSetListener`: plain dataclasses, one per concern."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pulumi

from gha_scalesets.components.platforms import DEFAULT_PLATFORM
from gha_scalesets.contract.warm import WarmPolicy
from gha_scalesets.providers import GitHubAppArgs

RUNTIMES = ("ec2", "ecs", "k8s")

DEFAULT_RUNNER_IMAGE = "ghcr.io/actions/actions-runner:latest"


class ListenerConfigError(pulumi.RunError):
    """Invalid component inputs; Pulumi prints the message without a traceback."""


class ScaleSetLike(Protocol):
    """What the listener needs of a scale set: a ``providers.ScaleSet`` or anything alike."""

    @property
    def scale_set_id(self) -> pulumi.Output[int]: ...

    @property
    def name(self) -> pulumi.Output[str]: ...


@dataclass
class ListenerScaleSet:
    """A scale set served by the listener, with its own runner bounds."""

    scale_set: ScaleSetLike
    min_runners: int = 0
    max_runners: int = 10
    # -- warm capacity (issue 28): runners kept ready ahead of demand (min_idle, schedules,
    # adaptive). A WarmPolicy or its dict form; the rules are contract/warm.py's
    # (docs/listener.md: "Warm capacity").
    warm: WarmPolicy | Mapping[str, Any] | None = None

    def warm_policy(self) -> WarmPolicy:
        """``warm`` validated (raises pydantic's ``ValidationError`` when it is not valid)."""
        if isinstance(self.warm, WarmPolicy):
            return self.warm
        return WarmPolicy.model_validate(dict(self.warm or {}))


@dataclass
class AlarmThresholds:
    """When the alarms (CloudWatch on ec2/ecs, Prometheus rules on k8s) fire."""

    job_wait_minutes: int = 10
    api_error_rate_percent: float = 5.0
    launch_failures: int = 3  # within 10 minutes
    # Warm (idle) runner-minutes within an hour; None: 20 % above what the scale sets' warm
    # policies may spend (their floors, or the adaptive cost cap), plus 10 minutes.
    idle_runner_minutes_per_hour: int | None = None
    # A credential with less of its hourly GitHub rate limit left (or set aside) for 5 minutes.
    credential_budget_percent: float = 10.0


@dataclass
class PacingOptions:
    """How the listener stays under GitHub's rate limits, per credential (docs/listener.md).

    ``jit_per_minute``: the ``generatejitconfig`` ceiling per credential; GitHub publishes none
    for the scale-set API (180 matches its REST endpoints' 900 points a minute). ``None``:
    learned from the first limit signal. ``enabled=False`` sends as fast as it can.
    """

    enabled: bool = True
    jit_per_minute: int | None = None

    def listener_setting(self) -> dict[str, Any]:
        """``LISTENER_PACING`` (``listener/config.py`` ``PacingConfig``)."""
        ceilings = {"jit": self.jit_per_minute} if self.jit_per_minute is not None else {}
        return {"enabled": self.enabled, "ceilings": ceilings}


@dataclass
class Ec2Options:
    """EC2 runtime: the listener in an Auto Scaling group (``replicas`` instances across the
    subnets), runners as instances."""

    # Required: an AMI with curl, the AWS CLI and an unpacked actions-runner in
    # /opt/actions-runner owned by user "runner" (see docs/components.md, 'What it creates').
    runner_ami_id: str | None = None
    runner_instance_types: Sequence[str] = ("m7i.large", "m6i.large")
    runner_volume_gb: int = 40
    root_device_name: str = "/dev/xvda"  # of both AMIs (Amazon Linux); "/dev/sda1" on Ubuntu
    spot: bool = True
    listener_instance_type: str = "t3.small"
    listener_ami_id: str | None = None  # None: the latest Amazon Linux 2023 for the platform


@dataclass
class EcsOptions:
    """ECS runtime: the listener as a Fargate service, runners as Fargate tasks."""

    # Required: an image with bash, curl, the AWS CLI and the runner at /home/runner/run.sh.
    runner_image: str | None = None
    cluster_arn: pulumi.Input[str] | None = None  # None: the component creates a cluster
    runner_cpu: int = 2048
    runner_memory: int = 4096
    listener_cpu: int = 256
    listener_memory: int = 512


@dataclass
class K8sOptions:
    """Kubernetes runtime: the listener as a Deployment, runners as Pods in one namespace."""

    namespace: str | None = None
    provider: pulumi.ProviderResource | None = None  # or opts.providers["kubernetes"]
    create_namespace: bool = True
    runner_image: str = DEFAULT_RUNNER_IMAGE
    runner_resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, Any]] = ()
    # True mounts the runner ServiceAccount's API token into every runner pod (bind it a Role
    # first): jobs run untrusted code, so runners get none by default.
    runner_service_account_token: bool = False
    listener_resources: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        }
    )


@dataclass
class ScaleSetListenerArgs:
    """Inputs of a listener: one runtime, its GitHub credential(s), one or more scale sets.

    ``scale_sets`` takes ``providers.ScaleSet`` resources (bounds 0..10) or
    :class:`ListenerScaleSet` wrappers with their own bounds. Give exactly one of
    ``github_token``, ``github_app`` and ``github_credentials`` (several tokens and/or Apps of
    the same org or enterprise: the listener spreads its requests over them).
    """

    runtime: str  # one of RUNTIMES
    github_config_url: pulumi.Input[str]
    scale_sets: Sequence[ScaleSetLike | ListenerScaleSet]
    listener_image: str
    github_token: pulumi.Input[str] | None = field(default=None, repr=False)
    github_app: GitHubAppArgs | None = field(default=None, repr=False)
    github_credentials: Sequence[GitHubAppArgs | pulumi.Input[str]] = field(default=(), repr=False)
    pacing: PacingOptions = field(default_factory=PacingOptions)
    vpc_id: pulumi.Input[str] | None = None
    subnet_ids: Sequence[pulumi.Input[str]] = ()
    kms_key_arn: pulumi.Input[str] | None = None  # None: the component creates a key
    alarm_actions: Sequence[pulumi.Input[str]] = ()
    alarm_thresholds: AlarmThresholds = field(default_factory=AlarmThresholds)
    log_retention_days: int = 30
    log_kms_key_arn: pulumi.Input[str] | None = None  # its policy must allow CloudWatch Logs
    metrics_port: int = 9102
    # Corporate networks (docs/corporate-networks.md): the proxy URL the listener and
    # its runners reach GitHub through (credentials in it only on k8s, where it is a Secret),
    # extra NO_PROXY hosts, and the PEM text of extra root CAs (a GHES instance's internal CA).
    proxy: pulumi.Input[str] | None = field(default=None, repr=False)
    no_proxy: str | None = None
    ca_bundle: str | None = None
    # Listener processes (2 recommended): one active per scale set, the others hot standbys
    # that take over within seconds (docs/listener.md: "High availability").
    replicas: int = 1
    # The CPU architecture of the listener image, its hosts and the runners (linux/amd64 or
    # linux/arm64): ECS task definitions follow it and EC2 instance types must match it.
    platform: str = DEFAULT_PLATFORM
    tags: Mapping[str, str] = field(default_factory=dict)
    ec2: Ec2Options = field(default_factory=Ec2Options)
    ecs: EcsOptions = field(default_factory=EcsOptions)
    k8s: K8sOptions = field(default_factory=K8sOptions)

    def credential_list(self) -> list[GitHubAppArgs | pulumi.Input[str]]:
        """Every credential given, whichever field holds it (tokens and Apps)."""
        if self.github_credentials:
            return list(self.github_credentials)
        if self.github_app is not None:
            return [self.github_app]
        return [] if self.github_token is None else [self.github_token]

    def bounded_scale_sets(self) -> list[ListenerScaleSet]:
        """Every scale set with its bounds (bare resources get the defaults)."""
        return [
            s if isinstance(s, ListenerScaleSet) else ListenerScaleSet(scale_set=s)
            for s in self.scale_sets
        ]
