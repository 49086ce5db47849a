"""``check``: the settings validated offline, and what the listener would serve with them.

Nothing here sends a request: credentials are read and parsed where they are files or inline
(a Secrets Manager secret is read at start), the CA bundle is loaded, and the summary names the
scale sets, runtime, registry, leadership and connection budgets the listener would use.
"""

from __future__ import annotations

from gha_scalesets.listener.capacity import CapacityError, plan
from gha_scalesets.listener.config import (
    CredentialsConfig,
    DynamoDBRegistryConfig,
    ListenerSettings,
)
from gha_scalesets.listener.credentials import CredentialsLoadError, local_credentials
from gha_scalesets.listener.leadership import store_kind
from gha_scalesets.scaleset.config_url import parse_config_url
from gha_scalesets.scaleset.errors import CredentialsError
from gha_scalesets.scaleset.network import NetworkSettings, ssl_context


def offline_problems(settings: ListenerSettings) -> list[str]:
    """What would stop the listener at start that can be known without the network."""
    problems = []
    several = len(settings.credentials) > 1
    for index, source in enumerate(settings.credentials):
        try:
            local_credentials(source)
        except (CredentialsLoadError, CredentialsError) as exc:
            problems.append(f"credentials{f'[{index}]' if several else ''}: {exc}")
    if settings.ca_bundle:
        try:
            ssl_context(NetworkSettings(ca_bundle=settings.ca_bundle, trust_env=False))
        except ValueError as exc:
            problems.append(str(exc))
    try:
        plan(settings)
    except CapacityError as exc:
        problems.append(str(exc))
    return problems


def _credential(creds: CredentialsConfig) -> str:
    if creds.token_file is not None:
        return f"a token from {creds.token_file}"
    if creds.token is not None:
        return "a token given inline"
    if creds.app is not None:
        return f"GitHub App {creds.app.client_id}, installation {creds.app.installation_id}"
    return f"the Secrets Manager secret {creds.secret_arn} (read at start)"


def _credentials(settings: ListenerSettings) -> str:
    return "; ".join(map(_credential, settings.credentials))


def _runtime(settings: ListenerSettings) -> str:
    ec2, ecs, k8s = settings.ec2, settings.ecs, settings.k8s
    if ec2 is not None and settings.runtime == "ec2":
        return f"ec2: instances of launch template {ec2.launch_template_id} ({ec2.instance_types})"
    if ecs is not None and settings.runtime == "ecs":
        return f"ecs: tasks of {ecs.task_definition} in cluster {ecs.cluster}"
    if k8s is not None and settings.runtime == "k8s":
        return f"k8s: pods of {k8s.image} in namespace {k8s.namespace}"
    return "local: runner processes on this machine"


def _connections(settings: ListenerSettings) -> str:
    budget = plan(settings)  # offline_problems() reported a budget that cannot serve
    return (
        f"connections to GitHub: {budget.long_poll_connections} for long polls, "
        f"{budget.api_connections} for the rest (up to {budget.open_files} open files)"
    )


def summary(settings: ListenerSettings) -> list[str]:
    """What the listener would serve, and how, one line each."""
    url = parse_config_url(settings.github_config_url)
    registry = settings.registry
    lines = [
        f"GitHub: {url.url} ({url.scope.value}), credentials: {_credentials(settings)}",
        f"runtime: {_runtime(settings)}",
        "registry: "
        + (
            f"DynamoDB table {registry.table_name}"
            if isinstance(registry, DynamoDBRegistryConfig)
            else "in memory (one process)"
        ),
        f"leadership: {store_kind(settings)} lease"
        f" ({settings.leadership.lease_duration_seconds:g} s)",
        f"metrics: {settings.metrics_host}:{settings.metrics_port}",
        _connections(settings),
        "scale sets:",
    ]
    for s in settings.scale_sets:
        name = s.name if s.name is not None else f"id {s.scale_set_id}"
        bounds = f"{s.min_runners}..{s.max_runners} runners"
        lines.append(f"  {name}: {bounds} (runner group {s.runner_group})")
    return lines
