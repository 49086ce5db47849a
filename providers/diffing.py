"""Offline diff of a ScaleSet: old outputs (which echo the inputs) against new checked inputs.

No API call is made: the stored outputs are the last state read from GitHub, and ``pulumi
refresh`` is the way to pull drift in. A value unknown at preview counts as changed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pulumi.dynamic import DiffResult

from gha_scalesets.providers import props as p
from gha_scalesets.scaleset import ConfigUrlError, parse_config_url


def _scope_key(url: str) -> tuple[str, ...] | str:
    """What a config URL points to; spelling variants of one org/repo/enterprise compare equal.

    GitHub treats owner, repository and host names case-insensitively, and ``www.github.com`` is
    ``github.com``, so such edits must not replace (and briefly duplicate) the scale set.
    """
    try:
        parsed = parse_config_url(url)
    except ConfigUrlError:
        return url
    names = (parsed.enterprise, parsed.organization, parsed.repository)
    return (parsed.api_base.lower(), parsed.scope, *((n or "").lower() for n in names))


def _same(key: str, old: Any, new: Any) -> bool:
    if key == p.GITHUB_CONFIG_URL:
        return isinstance(old, str) and isinstance(new, str) and _scope_key(old) == _scope_key(new)
    if key == p.LABELS:
        # GitHub does not keep label order, so order is no change.
        return isinstance(old, list) and isinstance(new, list) and Counter(old) == Counter(new)
    return bool(old == new)


def changed_keys(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    """Input properties whose new value differs from the old one, or is not known yet."""
    olds, news = p.plain(olds), p.plain(news)
    return [
        key
        for key in p.INPUT_KEYS
        if p.is_unknown(news.get(key)) or not _same(key, olds.get(key), news.get(key))
    ]


def diff_scale_set(olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
    """The engine-facing diff: replace on another config URL, update in place otherwise.

    The replacement is created before the old one is deleted: a different org, repository or
    enterprise is a separate namespace, so the same name cannot collide, and runners keep a
    scale set to register with during the switch. Credential rotation is an update that the
    provider applies without touching the scale set.
    """
    changed = changed_keys(olds, news)
    replaces = [key for key in changed if key in p.REPLACE_KEYS]
    stables = [] if replaces else [p.SCALE_SET_ID, p.GITHUB_CONFIG_URL]
    if stables and p.RUNNER_GROUP not in changed:
        stables += [p.RUNNER_GROUP_ID, p.RUNNER_GROUP_NAME]
    return DiffResult(
        changes=bool(changed),
        replaces=replaces,
        stables=stables,
        delete_before_replace=False,
    )
