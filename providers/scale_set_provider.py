"""The dynamic provider behind :class:`providers.ScaleSet`: check, diff and CRUD via scaleset/.

The provider object holds no state at all (Pulumi pickles it into every resource's state with
dill); each call gets its client from the resource's own properties (:mod:`providers.clients`).
The resource id is the scale set id. An existing scale set is adopted through the
``adopt_existing`` input: the engine's import path cannot reach a dynamic provider (its import
``Read`` carries no pickled provider, pulumi/pulumi#16175).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from gha_scalesets.providers import props as p
from gha_scalesets.providers.diffing import changed_keys, diff_scale_set
from gha_scalesets.providers.errors import ScaleSetProviderError
from gha_scalesets.providers.inputs import check_inputs
from gha_scalesets.scaleset.errors import ScaleSetError, ScaleSetNotFoundError

if TYPE_CHECKING:
    from gha_scalesets.scaleset import ScaleSet as LiveScaleSet
    from gha_scalesets.scaleset import SyncClient


def _clients() -> ModuleType:
    """:mod:`providers.clients`, loaded by the first CRUD call: only the provider host talks to
    GitHub, so a program declaring ScaleSets (``pulumi preview``) never loads the HTTP client."""
    from gha_scalesets.providers import clients

    return clients


@contextmanager
def _explained(action: str) -> Iterator[None]:
    """Prefix client errors with what was being done; their text is secret-free by contract."""
    try:
        yield
    except ScaleSetError as exc:
        raise ScaleSetProviderError(f"{action}: {exc}") from None


def _where(props: dict[str, Any]) -> str:
    return (
        f"scale set {props[p.NAME]!r} in runner group {props[p.RUNNER_GROUP]!r} "
        f"at {props.get(p.GITHUB_CONFIG_URL)}"
    )


def _outputs(props: dict[str, Any], live: LiveScaleSet) -> dict[str, Any]:
    """Inputs echoed (credentials included: delete and refresh only see outputs) plus live state.

    Where GitHub reports the same value in another spelling or order, the declared one is kept
    so the next diff stays empty.
    """
    labels = [label.name for label in live.labels]
    declared_labels = props.get(p.LABELS) or []
    if sorted(declared_labels) == sorted(labels):
        labels = list(declared_labels)
    group = props.get(p.RUNNER_GROUP) or live.runner_group_name
    if group.casefold() != live.runner_group_name.casefold():
        group = live.runner_group_name
    echoed = (p.GITHUB_CONFIG_URL, *p.CONNECTION_KEYS, p.ADOPT_EXISTING)
    outs = {key: props[key] for key in echoed if key in props}
    return outs | {
        p.NAME: live.name,
        p.RUNNER_GROUP: group,
        p.LABELS: labels,
        p.DISABLE_UPDATE: live.runner_setting.disable_update,
        p.SCALE_SET_ID: live.id,
        p.RUNNER_GROUP_ID: live.runner_group_id,
        p.RUNNER_GROUP_NAME: live.runner_group_name,
    }


def _inputs(outs: dict[str, Any]) -> dict[str, Any]:
    """The inputs that would declare ``outs``: after a refresh, diffs then name what drifted."""
    return {key: outs[key] for key in (*p.INPUT_KEYS, p.ADOPT_EXISTING) if key in outs}


def _scale_set_id(id_: str) -> int:
    try:
        return int(id_)
    except ValueError:
        raise ScaleSetProviderError(
            f"{id_!r} is not a scale set id (the numeric id GitHub assigned): to manage an "
            "existing scale set, declare it with adopt_existing=True instead of importing it"
        ) from None


def _adopt(client: SyncClient, existing: LiveScaleSet, props: dict[str, Any]) -> LiveScaleSet:
    """Take over ``existing``, bringing its labels and update setting to the declaration."""
    same_labels = sorted(label.name for label in existing.labels) == sorted(props[p.LABELS])
    same_setting = existing.runner_setting.disable_update == props[p.DISABLE_UPDATE]
    if same_labels and same_setting:
        return existing
    return client.update_scale_set(
        existing.id, labels=props[p.LABELS], disable_update=props[p.DISABLE_UPDATE]
    )


class ScaleSetProvider(ResourceProvider):
    """Manages one GitHub runner scale set per resource."""

    # The provider captures nothing secret, so it need not be stored encrypted in every
    # resource's state (which slows large stacks).
    serialize_as_secret_always = False

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        checked = check_inputs(news)
        return CheckResult(
            checked.inputs, [CheckFailure(prop, reason) for prop, reason in checked.failures]
        )

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_scale_set(olds, news)

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = p.plain(props)
        with _explained(f"creating {_where(props)}"):
            client = _clients().client_for(props)
            group_id = _clients().runner_group_id(client, props[p.RUNNER_GROUP])
            existing = client.get_scale_set_by_name(group_id, props[p.NAME])
            if existing is None:
                live = client.create_scale_set(
                    name=props[p.NAME],
                    runner_group_id=group_id,
                    labels=props[p.LABELS],
                    disable_update=props[p.DISABLE_UPDATE],
                )
            elif props.get(p.ADOPT_EXISTING):
                live = _adopt(client, existing, props)
            else:
                raise ScaleSetProviderError(
                    f"{_where(props)} already exists (scale set id {existing.id}), and Pulumi "
                    "does not adopt it silently. To manage it, set adopt_existing=True in this "
                    "resource's ScaleSetArgs and run `pulumi up` (its labels and disable_update "
                    "are then set to your declaration); otherwise pick another name or delete "
                    "the scale set on GitHub."
                )
        return CreateResult(str(live.id), _outputs(props, live))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        props = p.plain(props)
        with _explained(f"reading scale set {id_} at {props.get(p.GITHUB_CONFIG_URL)}"):
            try:
                live = _clients().client_for(props).get_scale_set(_scale_set_id(id_))
            except ScaleSetNotFoundError:
                # Gone on GitHub: the engine drops it from state and the next `up` recreates it.
                return ReadResult(None, {})
        outs = _outputs(props, live)
        return ReadResult(str(live.id), outs, _inputs(outs))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        olds, news = p.plain(olds), p.plain(news)
        changed = set(changed_keys(olds, news))
        if not changed & set(p.UPDATE_KEYS):
            # Only how GitHub is reached changed (credential rotation, PAT <-> App, proxy, CA):
            # nothing to send to GitHub.
            kept = {k: v for k, v in olds.items() if k not in p.CONNECTION_KEYS}
            return UpdateResult(kept | {k: news[k] for k in p.CONNECTION_KEYS if k in news})
        with _explained(f"updating scale set {id_} ({_where(news)})"):
            client = _clients().client_for(news)
            # The whole desired scale set, as upstream's controller sends it.
            live = client.update_scale_set(
                _scale_set_id(id_),
                name=news[p.NAME],
                labels=news[p.LABELS],
                disable_update=news[p.DISABLE_UPDATE],
                runner_group_id=_clients().runner_group_id(client, news[p.RUNNER_GROUP]),
            )
        return UpdateResult(_outputs(news, live))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        props = p.plain(props)
        # Already gone is the desired end state.
        with (
            _explained(f"deleting scale set {id_} at {props.get(p.GITHUB_CONFIG_URL)}"),
            suppress(ScaleSetNotFoundError),
        ):
            _clients().client_for(props).delete_scale_set(_scale_set_id(id_))
