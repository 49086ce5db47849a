"""The ``pulumi`` command on a project directory, as a user types it (not the Automation API).

A :class:`ProjectCli` runs the real CLI of the toolchain in a project directory with a local
file backend and passphrase secrets. The project's ``Pulumi.yaml`` names its virtualenv; the
language host and the dynamic-provider plugin run the program and the provider in it. A failing
command raises with the CLI's own output.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fixtures.packaging import run_command
from tests.fixtures.toolchain import require_tool
from tests.support.engine import CHANGED_PROPERTY, Step, engine_env

ROOT = Path(__file__).resolve().parents[2]


def _step(urn: str, op: str) -> Step | None:
    """The step of a resource, or None for the stack and provider resources."""
    kind = urn.split("::")[2]
    if kind.startswith(("pulumi:pulumi:", "pulumi:providers:")):
        return None
    return Step(kind.rsplit("$", 1)[-1], urn.rsplit("::", 1)[-1], op)


@dataclass(frozen=True)
class Steps:
    """What one ``--json`` operation did or would do to each resource.

    ``preview --json`` prints the plan as one document; ``up``/``refresh``/``destroy --json``
    print that plan, then the operation's engine events, one per line.
    """

    steps: list[Step]
    summary: dict[str, int]
    outputs: dict[str, Any]

    @classmethod
    def parse(cls, text: str) -> Steps:
        text = text.lstrip()
        plan, end = json.JSONDecoder().raw_decode(text)
        events = [json.loads(line) for line in text[end:].splitlines() if line.strip()]
        if not events:
            steps = [_step(s["urn"], s["op"]) for s in plan.get("steps", [])]
            return cls([s for s in steps if s], plan.get("changeSummary", {}), {})
        found: list[Step | None] = []
        summary: dict[str, int] = {}
        outputs: dict[str, Any] = {}
        for event in events:
            if "resourcePreEvent" in event:
                meta = event["resourcePreEvent"]["metadata"]
                found.append(_step(meta["urn"], meta["op"]))
            elif "resOutputsEvent" in event:
                meta = event["resOutputsEvent"]["metadata"]
                if meta["type"] == "pulumi:pulumi:Stack":
                    outputs = (meta.get("new") or {}).get("outputs", {})
            elif "summaryEvent" in event:
                summary = event["summaryEvent"]["resourceChanges"]
        return cls([s for s in found if s], summary, outputs)

    def changed(self) -> dict[str, str]:
        """The operation of each resource that changes, by resource name."""
        return {s.name: s.op for s in self.steps if s.op not in ("same", "read")}

    def types(self, op: str) -> set[str]:
        """The resource types of the steps doing ``op``."""
        return {s.type for s in self.steps if s.op == op}


class ProjectCli:
    """``pulumi`` in ``project``; state under ``home`` (backend, PULUMI_HOME)."""

    def __init__(self, project: Path, home: Path, venv_bin: Path | None = None) -> None:
        self.project = project
        self.pulumi = require_tool("pulumi")
        for plugin in ("pulumi-language-python", "pulumi-resource-pulumi-python"):
            require_tool(plugin)
        self.env = {**os.environ, **engine_env(home, [self.pulumi.parent, venv_bin])}
        self.env.pop("VIRTUAL_ENV", None)  # the project's Pulumi.yaml names its own

    def __call__(self, *args: str, stdin: str | None = None, timeout: int = 600) -> str:
        """Run ``pulumi ARGS --non-interactive``; its stdout."""
        return run_command(
            [self.pulumi, *args, "--non-interactive"],
            cwd=self.project,
            env=self.env,
            timeout=timeout,
            stdin=stdin,
        )

    def init(self, stack: str, config: dict[str, str], secrets: dict[str, str]) -> None:
        """``stack init``, then ``config set`` for each value (secrets typed on stdin)."""
        self("stack", "init", stack, "--secrets-provider", "passphrase")
        for key, value in config.items():
            self("config", "set", key, value)
        for key, value in secrets.items():
            self("config", "set", "--secret", key, stdin=value)

    def preview_diff(self) -> set[str]:
        """``preview --diff``: the properties it marks as changed."""
        return set(CHANGED_PROPERTY.findall(self("preview", "--diff")))

    def json(self, *operation: str) -> Steps:
        """``preview``/``up``/``refresh``/``destroy`` with ``--json`` (and ``--yes`` but for
        preview)."""
        confirm = () if operation[0] == "preview" else ("--yes",)
        return Steps.parse(self(*operation, *confirm, "--json"))

    def state(self) -> dict[str, Any]:
        """``stack export``: the checkpoint as stored (secrets stay ciphertext)."""
        return json.loads(self("stack", "export"))


@contextlib.contextmanager
def root_example_stack(example: str, home: Path) -> Iterator[tuple[ProjectCli, str]]:
    """The repository's own project and a new stack whose file is ``Pulumi.example-<example>.yaml``
    copied, as a user starts one; the stack file is removed afterwards (the backend is
    ``home``'s)."""
    stack = f"test-{uuid.uuid4().hex[:6]}"
    stack_file = ROOT / f"Pulumi.{stack}.yaml"
    shutil.copy(ROOT / f"Pulumi.example-{example}.yaml", stack_file)
    try:
        yield ProjectCli(ROOT, home), stack
    finally:
        stack_file.unlink(missing_ok=True)
