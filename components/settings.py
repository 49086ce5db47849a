"""The listener's configuration as ``LISTENER_*`` environment variables (``listener/config.py``).

Objects and lists are JSON, as the listener's settings loader expects. Nothing here is secret:
credentials are referenced by ARN or file path, never included.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi

from gha_scalesets.components.args import ListenerScaleSet
from gha_scalesets.components.validation import check_unique_names
from gha_scalesets.contract.names import LISTENER_ENV_PREFIX


def listener_env(
    *,
    github_config_url: str,
    runtime: str,
    credentials: dict[str, Any],
    scale_sets: list[dict[str, Any]],
    runtime_config: dict[str, Any],
    metrics_port: int,
    registry: dict[str, Any] | None = None,
    aws: dict[str, Any] | None = None,
    cloudwatch: dict[str, Any] | None = None,
    network: dict[str, str] | None = None,
    pacing: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Environment variables configuring one listener; ``network`` adds the proxy variables and
    ``LISTENER_CA_BUNDLE``."""
    settings: dict[str, Any] = {
        "github_config_url": github_config_url,
        "credentials": credentials,
        "runtime": runtime,
        "scale_sets": scale_sets,
        runtime: runtime_config,
        "metrics_port": metrics_port,
        "registry": registry,
        "aws": aws,
        "cloudwatch": cloudwatch,
        "pacing": pacing,
    }
    env = {
        setting_variable(key): value if isinstance(value, str) else json.dumps(value)
        for key, value in settings.items()
        if value is not None
    }
    return env | (network or {})


def setting_variable(key: str) -> str:
    """The environment variable of the listener's top-level setting ``key``."""
    return f"{LISTENER_ENV_PREFIX}{key.upper()}"


def resolve_env(**parts: pulumi.Input[Any]) -> pulumi.Output[dict[str, str]]:
    """:func:`listener_env` over Pulumi inputs (resource outputs resolve first)."""
    return pulumi.Output.all(**parts).apply(lambda values: listener_env(**values))


def _entry(entry: ListenerScaleSet, scale_set_id: int, name: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "scale_set_id": int(scale_set_id),
        "name": name,
        "min_runners": entry.min_runners,
        "max_runners": entry.max_runners,
    }
    warm = entry.warm_policy()
    if warm.enabled:
        item["warm"] = warm.model_dump(mode="json", exclude_defaults=True)
    return item


def scale_set_entries(entries: Sequence[ListenerScaleSet]) -> pulumi.Output[list[dict[str, Any]]]:
    """``LISTENER_SCALE_SETS`` items: id, name, bounds and warm capacity; fails on duplicate
    names."""
    ids = [e.scale_set.scale_set_id for e in entries]
    names = [e.scale_set.name for e in entries]
    return pulumi.Output.all(pulumi.Output.all(*ids), pulumi.Output.all(*names)).apply(
        lambda v: [
            _entry(entry, scale_set_id, name)
            for entry, scale_set_id, name in zip(
                entries, v[0], check_unique_names(v[1]), strict=True
            )
        ]
    )
