"""Property names of the ScaleSet resource and helpers for values as the dynamic host passes them.

In ``check`` and ``diff`` a value not yet known at preview is a :class:`pulumi.output.Unknown`;
secrets normally arrive as plain values (the host declines secrets), but a secret-wrapped value is
unwrapped here too so the provider never depends on that detail.
"""

from __future__ import annotations

import inspect
from typing import Any, Final

import pulumi
from pulumi.output import Unknown
from pulumi.runtime import rpc

GITHUB_CONFIG_URL: Final = "github_config_url"
NAME: Final = "name"
RUNNER_GROUP: Final = "runner_group"
LABELS: Final = "labels"
DISABLE_UPDATE: Final = "disable_update"
GITHUB_TOKEN: Final = "github_token"  # noqa: S105 (a property name)
GITHUB_APP: Final = "github_app"
ADOPT_EXISTING: Final = "adopt_existing"
PROXY: Final = "proxy"
CA_BUNDLE: Final = "ca_bundle"

SCALE_SET_ID: Final = "scale_set_id"
RUNNER_GROUP_ID: Final = "runner_group_id"
RUNNER_GROUP_NAME: Final = "runner_group_name"

CREDENTIAL_KEYS: Final = (GITHUB_TOKEN, GITHUB_APP)
"""The GitHub credential (exactly one is set)."""

CONNECTION_KEYS: Final = (*CREDENTIAL_KEYS, PROXY, CA_BUNDLE)
"""How the provider reaches GitHub; a change of these alone changes nothing on GitHub."""

SECRET_KEYS: Final = (*CREDENTIAL_KEYS, PROXY)
"""Inputs that are secrets (a proxy URL may hold credentials): secret in outputs and state."""

REPLACE_KEYS: Final = (GITHUB_CONFIG_URL,)
"""A change of these creates a new scale set (another org/repo/enterprise is another namespace)."""

UPDATE_KEYS: Final = (NAME, RUNNER_GROUP, LABELS, DISABLE_UPDATE)
"""A change of these is one PATCH of the existing scale set."""

INPUT_KEYS: Final = (*REPLACE_KEYS, *UPDATE_KEYS, *CONNECTION_KEYS)
"""Inputs a diff compares. ``adopt_existing`` is not one: it matters only when creating."""
OUTPUT_KEYS: Final = (SCALE_SET_ID, RUNNER_GROUP_ID, RUNNER_GROUP_NAME)

DEFAULT_RUNNER_GROUP: Final = "Default"

APP_CLIENT_ID: Final = "client_id"
APP_INSTALLATION_ID: Final = "installation_id"
APP_PRIVATE_KEY: Final = "private_key"


def is_unknown(value: Any) -> bool:
    """True when ``value`` or anything nested in it is not known yet (preview)."""
    if isinstance(value, Unknown) or value == rpc.UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(is_unknown(v) for v in value)
    return False


def plain(value: Any) -> Any:
    """``value`` with every secret wrapper removed, at any depth."""
    value = rpc.unwrap_rpc_secret(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def declared(value: Any) -> Any:
    """``value`` as far as a program knows it while declaring: outputs, resources and awaitables
    are unknown, at any depth (so the checks of ``check`` skip them, as at preview)."""
    if isinstance(value, pulumi.Output | pulumi.Resource) or inspect.isawaitable(value):
        return Unknown()
    if isinstance(value, dict):
        return {k: declared(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [declared(v) for v in value]
    return value
