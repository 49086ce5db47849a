"""Configuration errors as lines a person acts on, for every configuration surface.

A validation error of a settings model becomes ``<key>: <what is wrong>``; an unknown key also
gets the nearest known one ("did you mean max_runners?"). Used by the listener's settings, the
project's stack config, the component and the ScaleSet resource. Inputs are never quoted: a
rejected value may be a credential.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

Location = Sequence[str | int]


def report(title: str, problems: Iterable[str]) -> str:
    """``title:`` and one ``  - problem`` line each: how every configuration error reads."""
    return f"{title}:\n" + "\n".join(f"  - {problem}" for problem in problems)


def render(loc: Location) -> str:
    """``scale_sets[0].max_runners`` from ``("scale_sets", 0, "max_runners")``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def nearest(name: str, known: Iterable[str]) -> str | None:
    """The known key ``name`` most likely meant: the same but for case, else the closest."""
    known = sorted(known)
    for candidate in known:
        if candidate.casefold() == name.casefold():
            return candidate
    by_folded = {k.casefold(): k for k in known}
    close = difflib.get_close_matches(name.casefold(), list(by_folded), n=1, cutoff=0.6)
    return by_folded[close[0]] if close else None


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The models a field holds, through Optional, unions, lists, dicts and Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (Union, types.UnionType, Annotated, list, tuple, dict):
        return [m for arg in get_args(annotation) for m in _models(arg)]
    return []


def _key(name: str, field: Any) -> str:
    return field.alias or name


def _walk(model: type[BaseModel], loc: Location) -> tuple[list[str | int], set[str]]:
    """``loc`` without the tags of discriminated unions, and the keys accepted there."""
    models = [model]
    clean: list[str | int] = []
    for part in loc:
        fields = {_key(n, f): f for m in models for n, f in m.model_fields.items()}
        if isinstance(part, int):
            clean.append(part)
        elif part in fields:
            clean.append(part)
            models = _models(fields[part].annotation)
        elif tagged := [m for m in models if part in _tags(m)]:
            models = tagged  # a union's tag: the member it names, not a key of the document
        else:
            clean.append(part)
            models = []
    return clean, {_key(n, f) for m in models for n, f in m.model_fields.items()}


def _tags(model: type[BaseModel]) -> set[str]:
    field = model.model_fields.get("type")
    return {str(a) for a in get_args(field.annotation)} if field is not None else set()


def problems(
    exc: ValidationError, model: type[BaseModel], *, also_known: Iterable[str] = ()
) -> list[tuple[Location, str]]:
    """(location, message) of every error; ``also_known`` adds top-level keys read elsewhere."""
    found: list[tuple[Location, str]] = []
    for error in exc.errors(include_url=False, include_input=False):
        loc, _ = _walk(model, error["loc"])
        if error["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
            _, known = _walk(model, loc[:-1])
            guess = nearest(loc[-1], known | (set(also_known) if len(loc) == 1 else set()))
            message = (
                f"unknown key; did you mean {render([*loc[:-1], guess])}?"
                if guess
                else ("unknown key")
            )
        else:
            message = error["msg"].removeprefix("Value error, ")
        found.append((loc, message))
    return found


def lines(exc: ValidationError, model: type[BaseModel]) -> list[str]:
    """One ``key: message`` line per error (``(top level)`` for the whole document)."""
    return [f"{render(loc) or '(top level)'}: {message}" for loc, message in problems(exc, model)]
