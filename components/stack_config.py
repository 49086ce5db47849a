"""The Pulumi program's stack configuration (``pulumi config set ...``), checked up front.

Keys are those of :mod:`components.config_keys`, derived from the component's Args. Every key
of the project's namespace is read, so a typo is an error naming the nearest key; then the
component's and the ``ScaleSet`` resources' own rules run on the result, and every problem is
reported at once, each naming its key. Secrets (``githubToken``, ``githubAppPrivateKey``,
``kubeconfig``, ``proxy``) are read as secrets and never enter a message.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import BaseModel, ValidationError

from gha_scalesets import config_errors
from gha_scalesets.components import validation
from gha_scalesets.components.args import (
    ListenerConfigError,
    ListenerScaleSet,
    ScaleSetListenerArgs,
)
from gha_scalesets.components.config_keys import (
    DEFAULT_LISTENER_NAME,
    ENTRY,
    SCHEMA,
    secret_keys,
)
from gha_scalesets.config_errors import report
from gha_scalesets.providers import ScaleSetArgs

# What each ScaleSet takes from the listener's inputs. Not the proxy: the provider runs where
# `pulumi up` runs and takes HTTPS_PROXY from there.
SHARED = ("github_config_url", "github_token", "github_app", "ca_bundle")
TITLE = (
    "invalid stack configuration; fix each key below with `pulumi config set [--path] [--secret]"
    " <key> <value>` or in Pulumi.<stack>.yaml"
)
KUBECONFIG = "kubeconfig"


@dataclass(frozen=True)
class _Declared:
    """What validation sees of a scale set the program is about to declare."""

    pulumi_resource_name: str
    declared_name: Any


@dataclass
class ScaleSetEntry:
    """One item of ``scaleSets``: the ScaleSet's own inputs and the listener's bounds."""

    inputs: dict[str, Any]
    bounds: dict[str, Any]

    @property
    def resource_name(self) -> str:
        return f"scaleset-{self.inputs.get('name')}"


@dataclass
class StackConfig:
    """The checked configuration: the listener's inputs and each scale set's own."""

    listener_name: str
    args: ScaleSetListenerArgs  # scale_sets and k8s.provider are the program's to fill in
    scale_sets: list[ScaleSetEntry]
    k8s_context: str | None = None
    kubeconfig: pulumi.Output[str] | None = None

    def scale_set_args(self, entry: ScaleSetEntry) -> ScaleSetArgs:
        return ScaleSetArgs(**{k: getattr(self.args, k) for k in SHARED}, **entry.inputs)


def _namespace(config: pulumi.Config) -> dict[str, str]:
    """Every key the stack sets in the project's namespace, with its text."""
    prefix = f"{config.name}:"
    names = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    return {
        name.removeprefix(prefix): runtime_config.get_config(name)
        for name in sorted(names)
        if name.startswith(prefix)
    }


def _parsed(text: str) -> Any:
    """The CLI hands objects and lists (``--path``, YAML) over as JSON text."""
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass  # a string after all; its type's rule says what is wrong
    return text


def _drop(raw: dict[str, Any], loc: config_errors.Location) -> config_errors.Location:
    """Remove the value at ``loc`` and return where it was. A bad list item takes its list
    along (the other items keep their indexes); a place that cannot be reached, its key."""
    if not loc:  # the document as a whole: nothing of it is usable
        raw.clear()
        return loc
    if len(loc) > 1 and isinstance(loc[-1], int):
        loc = loc[:-1]
    parent: Any = raw
    try:
        for part in loc[:-1]:
            parent = parent[part]
        del parent[loc[-1]]
    except (KeyError, IndexError, TypeError):
        raw.pop(loc[0], None)  # type: ignore[arg-type]  # an index (int) pops nothing
        return loc[:1]
    return loc


def _checked(raw: dict[str, Any]) -> tuple[BaseModel, dict[str, str], set[str]]:
    """The model of what is valid in ``raw``, a problem per key that is not, and the keys
    whose values were left out (their rules would only repeat the problem)."""
    model = SCHEMA.model()
    problems: dict[str, str] = {}
    dropped: set[str] = set()
    while True:
        try:
            return model.model_validate(raw), problems, dropped
        except ValidationError as exc:
            found = config_errors.problems(exc, model, also_known=secret_keys())
            for loc, message in found:
                problems.setdefault(config_errors.render(loc), message)
                dropped.add(config_errors.render(_drop(raw, loc)))


def _under(key: str, keys: Iterable[str]) -> bool:
    return any(key == k or key.startswith((f"{k}.", f"{k}[")) for k in keys)


def _plain_secrets(config: pulumi.Config, given: Iterable[str]) -> dict[str, str]:
    stored_secret = set(runtime_config.get_config_secret_keys_env())
    full = {key: f"{config.name}:{key}" for key in given}
    return {
        key: f"stored in plain text: set it with `pulumi config set --secret {key}`"
        for key, name in full.items()
        if not runtime_config.is_config_secret(name) and name not in stored_secret
    }


def load_stack_config(config: pulumi.Config) -> StackConfig:
    """Read and check the stack's configuration; :class:`ListenerConfigError` lists every
    problem, each naming its key and how to fix it."""
    secret_paths = secret_keys()
    values = _namespace(config)
    given = [key for key in secret_paths if key in values]
    model, problems, dropped = _checked(
        {k: _parsed(v) for k, v in values.items() if k not in secret_paths}
    )
    problems |= _plain_secrets(config, given)
    secrets = {secret_paths[k]: config.get_secret(k) for k in given if k != KUBECONFIG}
    listener = SCHEMA.values(ScaleSetListenerArgs, model, "", secrets)
    stack = StackConfig(
        listener_name=getattr(model, "listener_name", None) or DEFAULT_LISTENER_NAME,
        args=ScaleSetListenerArgs(**listener, scale_sets=[]),
        scale_sets=[
            ScaleSetEntry(*(SCHEMA.values(cls, entry, ENTRY, {}) for cls in SCHEMA.entry))
            for entry in getattr(model, "scale_sets", None) or []
        ],
        k8s_context=getattr(getattr(model, "k8s", None), "context", None),
        kubeconfig=config.get_secret(KUBECONFIG) if KUBECONFIG in given else None,
    )
    lines = [f"{key}: {message}" for key, message in problems.items()]
    lines += [
        f"{key}: {message}"
        for key, message in _rule_problems(stack)
        if not _under(key, [*problems, *dropped])
    ]
    if lines:
        raise ListenerConfigError(report(TITLE, dict.fromkeys(lines)))
    return stack


def _rule_problems(stack: StackConfig) -> list[tuple[str, str]]:
    """The component's rules and each ScaleSet's, naming config keys."""
    entries = [
        ListenerScaleSet(_Declared(e.resource_name, e.inputs.get("name")), **e.bounds)  # type: ignore[arg-type]  # the rules read its names only
        for e in stack.scale_sets
    ]
    args = dataclasses.replace(stack.args, scale_sets=entries)
    found = validation.problems(
        stack.listener_name, args, has_k8s_provider=True, key=SCHEMA.config_key
    ).found
    for i, entry in enumerate(stack.scale_sets):

        def key(prop: str, i: int = i) -> str:
            shared = prop.split(".")[0] in SHARED
            return SCHEMA.config_key(prop if shared else f"scale_sets[{i}].{prop}")

        found += stack.scale_set_args(entry).problems(key)
    return found
