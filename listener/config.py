"""Listener settings: one YAML file or environment variables (``LISTENER_*``), same schema.

Containers need no file: every top-level key is also read from ``LISTENER_<KEY>``; object and list
values are JSON there (for example ``LISTENER_SCALE_SETS='[{"name": "linux-x64"}]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from gha_scalesets import config_errors
from gha_scalesets.contract.names import LISTENER_ENV_PREFIX, METRICS_NAMESPACE
from gha_scalesets.contract.warm import WarmPolicy, warm_problems
from gha_scalesets.scaleset.config_url import parse_config_url
from gha_scalesets.scaleset.pacing import PacingSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppCredentialsConfig(_Strict):
    client_id: str
    installation_id: int
    private_key_file: Path | None = None
    private_key: SecretStr | None = None

    @model_validator(mode="after")
    def _one_key_source(self) -> AppCredentialsConfig:
        if (self.private_key_file is None) == (self.private_key is None):
            raise ValueError("app credentials need exactly one of private_key_file or private_key")
        return self


class CredentialsConfig(_Strict):
    """Exactly one source: a token file, a token, a GitHub App, or a Secrets Manager secret.

    The secret's value is JSON: ``{"github_token": "..."}``,
    ``{"github_app": {"client_id": "...", "installation_id": 1, "private_key": "-----BEGIN..."}}``
    or several: ``{"credentials": [{"github_token": ...}, {"github_app": {...}}]}``. ``name``
    labels the credential in metrics and logs (default: ``app:<client id>`` or a digest).
    """

    name: str | None = Field(default=None, min_length=1, max_length=64)
    token_file: Path | None = None
    token: SecretStr | None = None
    app: AppCredentialsConfig | None = None
    secret_arn: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> CredentialsConfig:
        given = [k for k in ("token_file", "token", "app", "secret_arn") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "credentials need exactly one of token_file, token, app or secret_arn"
                f" (got {', '.join(given) or 'none'})"
            )
        return self


RouteClass = Literal["rest", "admin", "jit", "queue"]


class PacingConfig(_Strict):
    """Keeping each credential under GitHub's rate limits (docs/listener.md: "Rate limits").

    ``ceilings``: requests per ``window_seconds`` and credential, by route class (``jit`` is
    ``generatejitconfig``; GitHub publishes no limit for the scale-set API: 180 matches the 900
    points a minute of its REST endpoints). Unset, a ceiling is learned from the first limit
    signal when ``learn`` is on. ``enabled: false`` sends as fast as it can (not recommended).
    """

    enabled: bool = True
    ceilings: dict[RouteClass, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    window_seconds: float = Field(default=60.0, gt=0)
    max_concurrency: int = Field(default=100, ge=1, le=100)
    learn: bool = True

    def settings(self) -> PacingSettings:
        return PacingSettings(
            enabled=self.enabled,
            ceilings={cls: ceiling for cls, ceiling in self.ceilings.items()},
            window_seconds=self.window_seconds,
            max_concurrency=self.max_concurrency,
            learn=self.learn,
        )


class MemoryRegistryConfig(_Strict):
    type: Literal["memory"] = "memory"


class DynamoDBRegistryConfig(_Strict):
    type: Literal["dynamodb"] = "dynamodb"
    table_name: str
    region: str | None = None
    endpoint_url: str | None = None
    cache_ttl_seconds: float = Field(default=5.0, ge=0)
    # Concurrent DynamoDB requests of this listener (each holds a worker thread).
    max_concurrency: int = Field(default=16, ge=1, le=64)


RegistryConfig = Annotated[
    MemoryRegistryConfig | DynamoDBRegistryConfig, Field(discriminator="type")
]


class ScaleSetConfig(_Strict):
    """One scale set served by this listener, found by id or by (runner group, name)."""

    name: str | None = None
    scale_set_id: int | None = None
    runner_group: str = "Default"
    min_runners: int = Field(default=0, ge=0)
    max_runners: int = Field(default=10, ge=0)
    # -- warm capacity (issue 28): runners kept ready ahead of demand; its rules live in
    # contract/warm.py (docs/listener.md: "Warm capacity").
    warm: WarmPolicy = Field(default_factory=WarmPolicy)

    @model_validator(mode="after")
    def _check(self) -> ScaleSetConfig:
        if self.name is None and self.scale_set_id is None:
            raise ValueError("a scale set needs a name or a scale_set_id")
        if self.min_runners > self.max_runners:
            raise ValueError(
                f"min_runners ({self.min_runners}) is above max_runners ({self.max_runners})"
            )
        problems = warm_problems(self.warm, self.max_runners)
        if problems:
            raise ValueError("; ".join(f"warm.{key}: {message}" for key, message in problems))
        return self


class LocalRuntimeConfig(_Strict):
    """Runners as local processes: the simulator's runner emulator, or a real actions-runner."""

    runner_dir: Path | None = None  # holds run.sh of an unpacked actions-runner
    # One small file per runner so a restarted listener finds the processes of its predecessor;
    # None: a directory per config URL under the system temp directory.
    state_dir: Path | None = None
    # False: stopping the listener stops its runner processes (nothing leaks on a dev machine).
    keep_runners_on_exit: bool = False
    # SIGTERM to SIGKILL; within the listener's 10 s shutdown budget.
    stop_grace_seconds: float = Field(default=3.0, ge=0, le=3.5)


class ApiRateLimit(_Strict):
    """An account's own AWS rate limit for one operation (docs/runtimes.md: "API limits"):
    a bucket of ``burst`` requests refilled by ``per_second``, and for operations that start
    or stop instances/tasks the same for those (``resource_*``)."""

    burst: float = Field(gt=0)
    per_second: float = Field(gt=0)
    resource_burst: float | None = Field(default=None, gt=0)
    resource_per_second: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _both_or_neither(self) -> ApiRateLimit:
        if (self.resource_burst is None) != (self.resource_per_second is None):
            raise ValueError("give both resource_burst and resource_per_second, or neither")
        return self


# ``service:Operation`` as counted in the runtimes' api_calls, e.g. ``ec2:RunInstances``.
ApiRateLimits = dict[Annotated[str, Field(pattern=r"^[a-z0-9-]+:[A-Z][A-Za-z0-9]+$")], ApiRateLimit]


class Ec2RuntimeConfig(_Strict):
    launch_template_id: str
    launch_template_version: str = "$Latest"
    instance_types: list[str] = Field(min_length=1)
    subnet_ids: list[str] = Field(min_length=1)
    spot: bool = True
    on_demand_fallback: bool = True
    events_queue_url: str | None = None
    ssm_prefix: str = "/gha-scalesets/jit"
    kms_key_id: str | None = None
    launch_concurrency: int = Field(default=8, ge=1, le=64)  # RunInstances calls in flight
    # Instances of one scale set per RunInstances call (a burst is also split across subnets).
    launch_batch_size: int = Field(default=50, ge=1, le=1000)
    # Overrides of the documented limits the calls are paced by (an account with raised ones).
    api_rate_limits: ApiRateLimits = Field(default_factory=dict)
    events_wait_seconds: int = Field(default=20, ge=1, le=20)  # SQS long-poll wait


class EcsRuntimeConfig(_Strict):
    cluster: str
    task_definition: str
    container_name: str = "runner"
    subnet_ids: list[str] = Field(min_length=1)
    security_group_ids: list[str] = Field(default_factory=list)
    launch_type: Literal["FARGATE", "EC2"] | None = "FARGATE"
    capacity_provider: str | None = None
    events_queue_url: str | None = None
    ssm_prefix: str = "/gha-scalesets/jit"
    kms_key_id: str | None = None
    assign_public_ip: bool = False  # True only for public subnets without a NAT gateway
    launch_concurrency: int = Field(default=8, ge=1, le=64)  # RunTask calls in flight
    launch_batch_size: int = Field(default=10, ge=1, le=10)  # tasks per RunTask (its maximum)
    api_rate_limits: ApiRateLimits = Field(default_factory=dict)  # as for ec2
    events_wait_seconds: int = Field(default=20, ge=1, le=20)  # SQS long-poll wait


class K8sRuntimeConfig(_Strict):
    """Where the API server is: in a cluster its in-cluster config; outside, ``kubeconfig``
    (a file; its current context) or, without either, ``$KUBECONFIG`` / ``~/.kube/config``.
    ``api_url`` is a server without credentials (``kubectl proxy``)."""

    namespace: str
    # A Secret of HTTPS_PROXY/HTTP_PROXY/NO_PROXY variables (``envFrom`` of every runner) and a
    # ConfigMap holding ca.pem and bundle.pem (mounted at contract.names.RUNNER_CA_DIR).
    proxy_secret: str | None = None
    ca_config_map: str | None = None
    image: str = "ghcr.io/actions/actions-runner:latest"
    service_account: str | None = None
    # Jobs run untrusted code: runner pods get an API token only when this asks for one.
    automount_service_account_token: bool = False
    resources: dict[str, dict[str, str]] = Field(default_factory=dict)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    kubeconfig: Path | None = None
    api_url: str | None = None
    command: list[str] = Field(default_factory=lambda: ["/home/runner/run.sh"])
    run_as_user: int = Field(default=1001, ge=1)  # the image's non-root runner user
    launch_concurrency: int = Field(default=8, ge=1, le=64)  # Pod creations in flight
    watch_timeout_seconds: int = Field(default=300, ge=1)  # re-watch period (server-side)

    @model_validator(mode="after")
    def _one_server(self) -> K8sRuntimeConfig:
        if self.kubeconfig is not None and self.api_url is not None:
            raise ValueError("k8s needs at most one of kubeconfig and api_url")
        return self


class LeadershipConfig(_Strict):
    """Who of several listener replicas serves a scale set (docs/listener.md: "High availability").

    The active replica renews a lease every ``renew_interval_seconds``; a standby takes the
    scale set over once the lease went ``lease_duration_seconds`` without a renewal. The active
    stops serving ``renew_interval_seconds`` before its lease could expire (the fencing margin).
    """

    # auto: a Kubernetes Lease on the k8s runtime, else the DynamoDB registry's table, else
    # in memory (one process: nothing to share, leadership is immediate).
    store: Literal["auto", "kubernetes", "dynamodb", "memory"] = "auto"
    lease_duration_seconds: float = Field(default=10.0, ge=1, le=300)
    renew_interval_seconds: float = Field(default=2.0, gt=0, le=60)

    @model_validator(mode="after")
    def _renew_well_within_lease(self) -> LeadershipConfig:
        # The active keeps one renew interval as margin and needs one more to renew at all.
        if self.renew_interval_seconds * 3 > self.lease_duration_seconds:
            raise ValueError(
                f"renew_interval_seconds ({self.renew_interval_seconds}) must be at most a third "
                f"of lease_duration_seconds ({self.lease_duration_seconds})"
            )
        return self


class AwsConfig(_Strict):
    region: str | None = None
    endpoint_url: str | None = None  # a local emulator in tests; None in AWS


class CloudWatchConfig(_Strict):
    """Publish the metrics the alarms read (docs/components.md: "Alarms and the metrics they read").

    Region and endpoint come from ``aws``.
    """

    namespace: str = METRICS_NAMESPACE
    listener_name: str = Field(min_length=1)  # the ``Listener`` dimension: ``<stack>.<name>``
    # At most a minute: the alarms read one-minute periods and treat a missing Heartbeat as down.
    interval_seconds: float = Field(default=60.0, gt=0, le=60)


# -- capacity: many scale sets in one process (docs/listener.md: "Capacity") -----------------


class CapacityConfig(_Strict):
    """Connection budgets and pacing for many scale sets (checked at startup by
    ``listener.capacity``)."""

    # Connections for message-queue long polls, one held per served scale set for the
    # service's ~50 s hold. None: the number of scale sets plus headroom.
    long_poll_connections: int | None = Field(default=None, ge=1, le=50_000)
    # Connections for everything else (sessions, JIT configs, acks, runners, tokens).
    api_connections: int = Field(default=128, ge=8, le=2_048)
    # Scale-set lookups and session creations in flight (startup, takeovers, reopen storms).
    startup_concurrency: int = Field(default=16, ge=1, le=256)
    # First polls end spread over this window (GitHub's hold), so that the polls of many
    # scale sets do not all return in the same instant every 50 s. 0: no spreading.
    poll_stagger_seconds: float = Field(default=50.0, ge=0, le=300)


# -- end of capacity --------------------------------------------------------------------------


class ListenerSettings(BaseSettings):
    """Everything the listener needs; see docs/listener.md for the YAML form."""

    model_config = SettingsConfigDict(env_prefix=LISTENER_ENV_PREFIX, extra="forbid")

    github_config_url: str
    # One credential, or a list of several of one org/enterprise: requests go to the one with
    # the most budget left, and one GitHub limits or refuses is set aside (docs/listener.md).
    credentials: list[CredentialsConfig] = Field(min_length=1)
    pacing: PacingConfig = Field(default_factory=PacingConfig)
    runtime: Literal["local", "ec2", "ecs", "k8s"] = "local"
    registry: RegistryConfig = Field(default_factory=MemoryRegistryConfig)
    scale_sets: list[ScaleSetConfig] = Field(min_length=1)
    metrics_port: int | None = Field(default=9102, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    reconcile_interval_seconds: float = Field(default=300.0, gt=0)
    # Session owner shown on GitHub; None: this host's name (the pod name on Kubernetes).
    owner_name: str | None = None
    # How long a 409 session conflict (a crashed predecessor's session) is waited out.
    session_conflict_timeout_seconds: float = Field(default=900.0, gt=0)
    # Concurrent generatejitconfig requests of one scale-up batch.
    jit_concurrency: int = Field(default=10, ge=1, le=100)
    # An idle runner younger than this is never scaled down (statistics lag behind launches).
    scale_down_grace_seconds: float = Field(default=30.0, ge=0)
    # A reservation without a launched runner older than this is repaired by reconciliation.
    launch_timeout_seconds: float = Field(default=300.0, gt=0)
    # Longest wait between retries of failed launches (exponential backoff with jitter).
    max_backoff_seconds: float = Field(default=60.0, gt=0)
    # After a message with job events, wait this long before the next poll so that more
    # events share one message (one GET + one DELETE each): fewer API calls under bursts.
    message_batch_window_seconds: float = Field(default=0.5, ge=0, le=5)
    metrics_host: str = "0.0.0.0"
    # Corporate networks (docs/corporate-networks.md). ``proxy``: the proxy URL for
    # GitHub traffic, winning over HTTPS_PROXY (may hold credentials, so a secret); ``no_proxy``:
    # hosts reached directly, winning over NO_PROXY; ``ca_bundle``: extra root CAs (PEM text or
    # file). The local runtime hands all three to its runner processes.
    proxy: SecretStr | None = None
    no_proxy: str | None = None
    ca_bundle: str | None = None
    leadership: LeadershipConfig = Field(default_factory=LeadershipConfig)
    capacity: CapacityConfig = Field(default_factory=CapacityConfig)
    aws: AwsConfig = Field(default_factory=AwsConfig)
    cloudwatch: CloudWatchConfig | None = None  # None: publish no CloudWatch metrics
    local: LocalRuntimeConfig = Field(default_factory=LocalRuntimeConfig)
    ec2: Ec2RuntimeConfig | None = None
    ecs: EcsRuntimeConfig | None = None
    k8s: K8sRuntimeConfig | None = None

    @field_validator("credentials", mode="before")
    @classmethod
    def _one_credential(cls, value: Any) -> Any:
        """One credential is a list of one; its problems are named as the one ``credentials``."""
        if not isinstance(value, dict):
            return value
        try:
            return [CredentialsConfig.model_validate(value)]
        except ValidationError as exc:
            found = config_errors.problems(exc, CredentialsConfig)
            raise ValueError(
                "; ".join(f"{config_errors.render(loc)}: {m}" if loc else m for loc, m in found)
            ) from None

    @field_validator("github_config_url")
    @classmethod
    def _config_url(cls, value: str) -> str:
        parse_config_url(value)  # a ConfigUrlError (a ValueError) says what is wrong
        return value

    @field_validator("registry", mode="before")
    @classmethod
    def _registry_shorthand(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _runtime_section_present(self) -> ListenerSettings:
        if self.runtime != "local" and getattr(self, self.runtime) is None:
            raise ValueError(f"runtime {self.runtime!r} needs a {self.runtime!r} section")
        names = [s.name for s in self.scale_sets if s.name]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"scale set names must be unique: {', '.join(duplicates)}")
        labels = [c.name for c in self.credentials if c.name]
        twice = sorted({n for n in labels if labels.count(n) > 1})
        if twice:
            raise ValueError(f"credential names must be unique: {', '.join(twice)}")
        store = self.leadership.store
        if store == "kubernetes" and self.k8s is None:
            raise ValueError("leadership.store 'kubernetes' needs the 'k8s' section (namespace)")
        if store == "dynamodb" and not isinstance(self.registry, DynamoDBRegistryConfig):
            raise ValueError("leadership.store 'dynamodb' needs the dynamodb registry")
        return self


def load_settings(path: Path | None) -> ListenerSettings:
    """Read settings from ``path`` (YAML) layered over ``LISTENER_*`` variables."""
    if path is None:
        return ListenerSettings()  # all from the environment
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the top level must be a mapping of settings")
    return ListenerSettings(**data)
