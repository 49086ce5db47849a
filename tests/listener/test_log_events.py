"""Every structured log event is named by a short sentence, never by a snake_case key.

Operators search the JSON lines by their ``event`` (``"session opened"``, ``"launch request
failed"``); one style everywhere means one way to search. The names are read from the source:
each call of a logger made by ``structlog.get_logger`` must pass a constant sentence first.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("components", "contract", "gha_scalesets", "listener", "providers", "scaleset")
LEVELS = frozenset({"debug", "info", "warning", "error", "exception", "critical", "msg"})
SNAKE_CASE = re.compile(r"[a-z0-9]+(_[a-z0-9]+)+")


def _structlog_names(tree: ast.Module) -> set[str]:
    """Module-level names bound to ``structlog.get_logger(...)``."""
    names = set()
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and ast.unparse(node.value.func) == "structlog.get_logger"
        ):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def structlog_events() -> Iterator[tuple[str, ast.expr | None]]:
    """(where, first argument) of every structlog logging call in the package."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            loggers = _structlog_names(tree)
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in LEVELS
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in loggers
                ):
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    yield where, node.args[0] if node.args else None


def problem(event: ast.expr | None) -> str | None:
    """Why ``event`` is not a sentence event name, or None."""
    if not isinstance(event, ast.Constant) or not isinstance(event.value, str):
        return "the event must be a constant string (searchable as written)"
    text = event.value
    if SNAKE_CASE.fullmatch(text):
        return f"{text!r} is a key: name the event with a short sentence"
    if " " not in text:
        return f"{text!r} is one word: say what happened"
    if text != text.strip() or text.endswith("."):
        return f"{text!r}: no surrounding spaces, no final full stop"
    if "%" in text or "{" in text:
        return f"{text!r}: values go in fields, not in the event"
    return None


def test_every_log_event_is_a_sentence() -> None:
    events = list(structlog_events())
    names = {e.value for _, e in events if isinstance(e, ast.Constant)}
    assert len(events) > 40 and "session opened" in names  # the scan sees the listener's calls
    problems = [f"{where}: {why}" for where, event in events if (why := problem(event))]
    assert problems == []


def test_the_rule_refuses_keys_and_accepts_sentences() -> None:
    def check(source: str) -> str | None:
        return problem(ast.parse(source, mode="eval").body)

    assert check('"runner_launch_failed"') is not None
    assert check('"spot"') is not None
    assert check('f"runner {name} failed"') is not None
    assert check('"session opened."') is not None
    assert check('"session opened"') is None
    assert check('"GitHub unavailable, retrying"') is None
