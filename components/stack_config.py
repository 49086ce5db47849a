"""The Pulumi program's stack configuration (``pulumi config set ...``), checked up front.

Keys are camelCase in the project's namespace (``gha-scalesets:scaleSets``); secrets
(``githubToken``, ``githubAppPrivateKey``, ``kubeconfig``, ``proxy``) are read separately and
never enter this model, so no error message can quote them.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pulumi
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from gha_scalesets.components.args import DEFAULT_RUNNER_IMAGE, ListenerConfigError
from gha_scalesets.components.platforms import DEFAULT_PLATFORM

# The keys whose values are secrets: set them with `pulumi config set --secret`.
SECRET_KEYS = ("githubToken", "githubAppPrivateKey", "kubeconfig", "proxy")


class _Config(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ScaleSetConfig(_Config):
    name: str = Field(min_length=1)
    labels: list[str] = Field(default_factory=list)
    runner_group: str = "Default"
    min_runners: int = Field(default=0, ge=0)
    max_runners: int = Field(default=10, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> ScaleSetConfig:
        if self.min_runners > self.max_runners:
            raise ValueError(
                f"minRunners ({self.min_runners}) is above maxRunners ({self.max_runners})"
            )
        return self


class GitHubAppConfig(_Config):
    client_id: str = Field(min_length=1)
    installation_id: int = Field(gt=0)


class Ec2Config(_Config):
    runner_ami_id: str | None = None
    runner_instance_types: list[str] = Field(default=["m7i.large", "m6i.large"], min_length=1)
    runner_volume_gb: int = Field(default=40, ge=8)
    spot: bool = True
    listener_instance_type: str = "t3.small"


class EcsConfig(_Config):
    runner_image: str | None = None
    cluster_arn: str | None = None
    runner_cpu: int = 2048
    runner_memory: int = 4096


class K8sConfig(_Config):
    namespace: str = Field(min_length=1)
    create_namespace: bool = True
    context: str | None = None  # kubeconfig context; None: the current one
    runner_image: str = DEFAULT_RUNNER_IMAGE


class StackConfig(_Config):
    """Everything ``__main__.py`` needs apart from the secrets."""

    runtime: Literal["ec2", "ecs", "k8s"]
    github_config_url: str = Field(min_length=1)
    github_app: GitHubAppConfig | None = None
    scale_sets: list[ScaleSetConfig] = Field(min_length=1)
    listener_name: str = "listener"
    listener_image: str = Field(min_length=1)
    vpc_id: str | None = None
    subnet_ids: list[str] = Field(default_factory=list)
    alarm_topic_arn: str | None = None
    kms_key_arn: str | None = None
    log_retention_days: int = 30
    platform: str = DEFAULT_PLATFORM  # linux/amd64 or linux/arm64: the images' and hosts' CPU
    # Corporate networks: hosts the listener and runners reach directly besides the built-in
    # ones, and the PEM text of extra root CAs (also used by the ScaleSet resources).
    no_proxy: str | None = None
    ca_bundle: str | None = None
    ec2: Ec2Config = Field(default_factory=Ec2Config)
    ecs: EcsConfig = Field(default_factory=EcsConfig)
    k8s: K8sConfig | None = Field(default=None, alias="k8s")  # to_camel would say "k8S"

    @model_validator(mode="after")
    def _consistent(self) -> StackConfig:
        names = [s.name for s in self.scale_sets]
        if duplicates := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"scaleSets: names must be unique ({', '.join(duplicates)})")
        if self.runtime == "k8s" and self.k8s is None:
            raise ValueError("runtime k8s needs the k8s object (at least {namespace: ...})")
        if self.runtime != "k8s" and (not self.vpc_id or not self.subnet_ids):
            raise ValueError(f"runtime {self.runtime} needs vpcId and subnetIds")
        if self.runtime == "ec2" and not self.ec2.runner_ami_id:
            raise ValueError("runtime ec2 needs ec2.runnerAmiId (an AMI with the actions runner)")
        if self.runtime == "ecs" and not self.ecs.runner_image:
            raise ValueError("runtime ecs needs ecs.runnerImage (a runner image with the AWS CLI)")
        return self


def _location(error: dict[str, Any]) -> str:
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def load_stack_config(config: pulumi.Config) -> StackConfig:
    """Read and check the stack's configuration; errors name each key and how to fix it."""
    raw: dict[str, Any] = {}
    for field_name, field in StackConfig.model_fields.items():
        key = field.alias or field_name
        value = config.get(key)
        if value is not None:
            # The CLI stores objects and lists (`--path`, YAML) as JSON text.
            raw[key] = json.loads(value) if value[:1] in ("{", "[") else value
    try:
        return StackConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [
            f"  - {config.name}:{_location(e)}: {e['msg']}" if e["loc"] else f"  - {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise ListenerConfigError(
            "the stack configuration is invalid (fix with `pulumi config set <key> <value>`,"
            " objects with `--path` or in Pulumi.<stack>.yaml):\n" + "\n".join(lines)
        ) from None
