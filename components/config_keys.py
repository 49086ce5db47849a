"""The stack configuration's keys, derived from the component's Args dataclasses.

Every field of :class:`ScaleSetListenerArgs`, nested options included, is the key of its name in
camelCase (``ec2.runner_ami_id`` is ``ec2.runnerAmiId``) with the field's own type and default:
a new field is a new key with nothing to write here (and a row in docs/components.md). The
exceptions, each for a reason:

- secrets (fields declared ``repr=False``) are top-level secret keys named after their path
  (``github_token``: ``githubToken``, ``github_app.private_key``: ``githubAppPrivateKey``); they
  never enter the model, so no message can quote them;
- ``scale_sets`` is a list of objects with a ``ScaleSet``'s own inputs (the fields of
  ``ScaleSetArgs`` the listener has none of) and its bounds (the fields of ``ListenerScaleSet``);
- ``k8s.provider`` is built by the program from the secret ``kubeconfig`` and ``k8s.context``;
- ``alarm_actions`` keeps its first key, ``alarmTopicArn`` (one ARN or a list);
- ``listenerName`` is the component's name;
- ``scaleSets[].warm`` is the listener's own ``warm`` section (``WarmPolicy``), keys as there.
- ``github_credentials`` (several credentials) is not a key yet: a program passes it.

A list key also takes a single value (a list of one).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import re
import types
from collections.abc import Iterator
from dataclasses import MISSING, dataclass
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import pulumi
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from gha_scalesets.components.args import ListenerScaleSet, ScaleSetListenerArgs
from gha_scalesets.providers import ScaleSetArgs

SCALE_SETS = "scale_sets"
ENTRY = f"{SCALE_SETS}[]"
LISTENER_NAME = "name"  # the component's name, as validation's messages call it
PROVIDER = "k8s.provider"
# Keys not named after their path: kept from before keys were derived, or standing for what
# the program builds.
RENAMED = {"alarm_actions": "alarmTopicArn", LISTENER_NAME: "listenerName", PROVIDER: "kubeconfig"}
# Keys with no Args field of their own, by the object holding them: (name, type, default, path).
DEFAULT_LISTENER_NAME = "listener"
EXTRA: dict[str, list[tuple[str, Any, Any, str]]] = {
    "": [("listener_name", str, DEFAULT_LISTENER_NAME, LISTENER_NAME)],
    "k8s": [("context", str | None, None, PROVIDER)],  # a context of the kubeconfig
}
# github_credentials (several tokens and Apps, i27) has no stack config form yet.
SKIPPED = frozenset({PROVIDER, f"{ENTRY}.scale_set", "github_credentials"})
_INDEX = re.compile(r"\[(\d+)\]")


class UnmappedField(TypeError):
    """An Args field whose type has no stack config form: map it in this module by hand."""


@dataclass(frozen=True)
class ConfigKey:
    """One stack config key and the Args field it sets."""

    key: str  # as written in Pulumi.<stack>.yaml: "ec2.runnerAmiId", "scaleSets[].maxRunners"
    path: str  # the Args path: "ec2.runner_ami_id", "scale_sets[].max_runners"
    default: Any = MISSING  # MISSING: required
    secret: bool = False


def camel(name: str) -> str:
    """``runner_ami_id`` -> ``runnerAmiId`` (digits stay: ``k8s``, ``ec2``)."""
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _hints(cls: type) -> dict[str, Any]:
    # pulumi.Input[T] is Union[T, Awaitable[T], "Output[T]"]: resolve its forward reference.
    return get_type_hints(cls, localns={"Output": pulumi.Output, "T": Any})


def _dataclass(tp: Any) -> type | None:
    """The dataclass ``tp`` is, optionally or as the items of a list."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return tp
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        found = {_dataclass(a) for a in args if a is not type(None)} - {None}
        return found.pop() if len(found) == 1 else None
    if origin in (list, tuple, collections.abc.Sequence) and args:
        return _dataclass(args[0])
    return None


def _is_list(tp: Any) -> bool:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_is_list(a) for a in get_args(tp))
    return origin in (list, tuple, collections.abc.Sequence)


def _is_secret(f: dataclasses.Field[Any], tp: Any) -> bool:
    """A value declared ``repr=False`` (an object so declared holds its secrets itself)."""
    return not f.repr and _dataclass(tp) is None


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def _later(tp: Any) -> bool:
    """Outputs and awaitables: what a program passes and a config file cannot."""
    origin = get_origin(tp) or tp
    return origin is collections.abc.Awaitable or origin is pulumi.Output


def _one_or_more(value: Any) -> Any:
    return value if isinstance(value, list | tuple) else [value]


class _Object(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_by_alias=True, validate_by_name=False)


@dataclass(frozen=True)
class _Leaf:
    path: str
    default: Any
    secret: bool
    key: str | None = None  # a key with no Args field of its own


class ConfigSchema:
    """The keys, model and Args of one Args class (another in tests: fields added later)."""

    def __init__(
        self,
        args: type = ScaleSetListenerArgs,
        entry: tuple[type, ...] = (ScaleSetArgs, ListenerScaleSet),
    ) -> None:
        self.args = args
        self.entry = entry
        self._models: dict[str, type[BaseModel]] = {}

    # -- structure -----------------------------------------------------------------------

    def _class_at(self, path: str) -> type:
        """The dataclass of the object at ``path`` (``""``: the Args themselves)."""
        classes: tuple[type, ...] = (self.args,)
        for name in filter(None, path.split(".")):
            if name == ENTRY:
                classes = self.entry
                continue
            bare = name.removesuffix("[]")
            found = (_dataclass(_hints(c)[bare]) for c in classes if bare in _hints(c))
            classes = tuple(found)  # type: ignore[arg-type]  # a path names dataclass fields only
        return classes[0]

    def fields(self, path: str) -> Iterator[tuple[type, dataclasses.Field[Any], Any, str]]:
        """(owner, field, type, path) of the fields the object at ``path`` holds."""
        classes = self.entry if path == ENTRY else (self._class_at(path),)
        listener = {f.name for f in dataclasses.fields(self.args)}
        for cls in classes:
            hints = _hints(cls)
            for f in dataclasses.fields(cls):
                field_path = _join(path, f.name)
                if field_path in SKIPPED or (cls is self.entry[0] and f.name in listener):
                    continue  # a ScaleSet's URL, credential and CA are the listener's
                yield cls, f, hints[f.name], field_path

    @staticmethod
    def _object_path(field_path: str, tp: Any) -> str | None:
        """Where a field's nested objects live (``x`` or, for a list, ``x[]``), or None."""
        if field_path == SCALE_SETS:
            return ENTRY
        if _dataclass(tp) is None:
            return None
        return f"{field_path}[]" if _is_list(tp) else field_path

    # -- keys ----------------------------------------------------------------------------

    def _leaves(self, path: str = "") -> list[_Leaf]:
        found: list[_Leaf] = []
        for _, f, tp, field_path in self.fields(path):
            if (inner := self._object_path(field_path, tp)) is not None:
                found += self._leaves(inner)
            else:
                found.append(_Leaf(field_path, _default(f), _is_secret(f, tp)))
        owner = ".".join(camel(s) for s in path.split(".") if s)
        return found + [
            _Leaf(leaf_path, default, False, _join(owner, camel(name)))
            for name, _, default, leaf_path in EXTRA.get(path, ())
        ]

    @functools.cached_property
    def _leaf_paths(self) -> dict[str, bool]:
        """Each leaf's path and whether it is a secret."""
        return {leaf.path: leaf.secret for leaf in self._leaves()}

    def config_keys(self) -> list[ConfigKey]:
        """Every key, in the order of the Args' fields, secrets among them."""
        found = [
            ConfigKey(leaf.key or self.config_key(leaf.path), leaf.path, leaf.default, leaf.secret)
            for leaf in self._leaves()
        ]
        return [*found, ConfigKey(RENAMED[PROVIDER], PROVIDER, None, secret=True)]

    def config_key(self, path: str) -> str:
        """The config key of an Args path: ``scale_sets[2].min_runners`` is
        ``scaleSets[2].minRunners``, ``github_app.private_key`` is ``githubAppPrivateKey``;
        what follows a key (a mapping's own keys) stays as given."""
        indexes = iter(_INDEX.findall(path))
        segments = _INDEX.sub("[]", path).split(".")
        named: list[str] = []
        for cut, segment in enumerate(segments, 1):
            head = ".".join(segments[:cut])
            bare, suffix = head.removesuffix("[]"), "[]" if head.endswith("[]") else ""
            if bare in RENAMED or self._leaf_paths.get(bare):  # a secret is a top-level key
                named = [(RENAMED.get(bare) or camel(bare.replace(".", "_"))) + suffix]
            else:
                named.append(camel(segment.removesuffix("[]")) + suffix)
            if bare in self._leaf_paths:
                named += segments[cut:]
                break
        return re.sub(r"\[\]", lambda _: f"[{next(indexes, '')}]", ".".join(named))

    # -- model ---------------------------------------------------------------------------

    def model(self, path: str = "") -> type[BaseModel]:
        """The pydantic model of the object at ``path``: its keys, types and nested objects."""
        if path not in self._models:
            fields: dict[str, Any] = {}
            for _, f, tp, field_path in self.fields(path):
                if not _is_secret(f, tp):
                    alias = self.config_key(field_path).rsplit(".", 1)[-1]
                    fields[f.name] = (self._type(tp, field_path), Field(None, alias=alias))
            for name, tp, _, _ in EXTRA.get(path, ()):
                fields[name] = (tp, Field(None, alias=camel(name)))
            title = re.sub(r"\W", "_", path) or "stack"
            self._models[path] = create_model(f"Config_{title}", __base__=_Object, **fields)
        return self._models[path]

    def _type(self, tp: Any, path: str) -> Any:
        """The type a config value of Args type ``tp`` must have."""
        if path == SCALE_SETS:
            return Annotated[list[self.model(ENTRY)], BeforeValidator(_one_or_more)]  # type: ignore[misc]  # a type built at run time
        if tp is Any or tp in (str, int, float, bool, type(None)) or get_origin(tp) is Literal:
            return tp
        if isinstance(tp, type) and issubclass(tp, Enum):
            return tp
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            # a settings model of the listener (``ListenerScaleSet.warm``): its own snake_case
            # keys, checked by that model with the component's other inputs
            return dict[str, Any]
        if dataclasses.is_dataclass(tp):
            return self.model(path)
        origin, args = get_origin(tp), get_args(tp)
        if origin in (Union, types.UnionType):
            kept = [self._type(a, path) for a in args if not _later(a)]
            if kept:
                return Union[tuple(kept)]  # noqa: UP007 (a union built at run time)
        elif origin in (list, tuple, collections.abc.Sequence):
            item = self._type(args[0] if args else Any, f"{path}[]")
            return Annotated[list[item], BeforeValidator(_one_or_more)]  # type: ignore[valid-type]  # built at run time
        elif origin in (dict, collections.abc.Mapping):
            return dict[self._type(args[0], path), self._type(args[1], path)]  # type: ignore[misc]  # built at run time
        raise UnmappedField(f"{path}: {tp!r} has no stack config form; map it in {__name__}")

    # -- values --------------------------------------------------------------------------

    def values(
        self, cls: type, given: BaseModel | None, path: str, secrets: dict[str, Any]
    ) -> dict[str, Any]:
        """Keyword arguments of ``cls`` from the object at ``path``: what was given, secrets
        by path, None for a required field not given (its rule says so); the rest are the
        dataclass's defaults."""
        kwargs: dict[str, Any] = {}
        for owner, f, tp, field_path in self.fields(path):
            inner = self._object_path(field_path, tp)
            if owner is not cls or field_path == SCALE_SETS:
                continue
            if field_path in secrets:
                kwargs[f.name] = secrets[field_path]
            elif given is not None and f.name in given.model_fields_set:
                kwargs[f.name] = self._value(getattr(given, f.name), tp, inner, secrets)
            elif (
                inner
                and (nested := _dataclass(tp))
                and any(p.startswith(f"{inner}.") for p in secrets)
            ):
                kwargs[f.name] = nested(**self.values(nested, None, inner, secrets))  # its secret
            elif _default(f) is MISSING:
                kwargs[f.name] = None
        return kwargs

    def _value(self, value: Any, tp: Any, path: str | None, secrets: dict[str, Any]) -> Any:
        if path is None or value is None:
            return value
        cls = _dataclass(tp)
        assert cls is not None  # an object path is a dataclass's (_object_path)
        if isinstance(value, list):
            return [cls(**self.values(cls, v, path, secrets)) for v in value]
        return cls(**self.values(cls, value, path, secrets))


SCHEMA = ConfigSchema()


def secret_keys(schema: ConfigSchema = SCHEMA) -> dict[str, str]:
    """Secret config keys and the Args paths they set."""
    return {k.key: k.path for k in schema.config_keys() if k.secret}
