"""The real Pulumi engine for tests and benchmarks: the Automation API running inline programs.

Each :class:`Engine` is a private Pulumi installation in a directory of the caller's: a local
file backend, its own ``PULUMI_HOME``, passphrase secrets, no update checks and no plugin
downloads. The CLI and the dynamic-provider plugin come from the real toolchain
(`make toolchain`); the plugin runs the SDK's provider host in this virtualenv's Python, which
imports the project.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

PROJECT = "gha-scalesets-engine"
PASSPHRASE = "local-engine-passphrase"
ROTATED_PAT = "ghp_engine_tests_rotated_token"  # the engine tests' simulator trusts it too
Declared = dict[str, dict[str, Any]]  # resource name -> ScaleSetArgs fields


class ToolchainMissing(RuntimeError):
    """A binary of the real toolchain is not built."""


def toolchain_bin() -> Path:
    """Where `make toolchain` puts its binaries (``GHA_TOOLCHAIN_HOME`` moves the cache)."""
    home = os.environ.get("GHA_TOOLCHAIN_HOME") or Path.home() / ".cache/gha-scalesets/toolchain"
    return Path(home) / "bin"


def tool(name: str) -> Path:
    """The path of toolchain binary ``name``, or :class:`ToolchainMissing` saying what to run."""
    path = toolchain_bin() / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ToolchainMissing(
            f"{name} is not in the real toolchain at {toolchain_bin()}: run `make toolchain` "
            "(or `make test-real`, which runs it first)"
        )
    return path


# A property line of the engine's diff display, marked changed: "  ~ labels   : [".
CHANGED_PROPERTY = re.compile(r"^\s+[~+-] (\w+)\s*:", re.MULTILINE)


@dataclass(frozen=True)
class Step:
    """One operation the engine did, or would do, to one resource."""

    type: str
    name: str
    op: str


@dataclass
class Outcome:
    """An engine operation's result and its steps (not the stack's or the providers')."""

    result: Any
    steps: list[Step]

    @property
    def stdout(self) -> str:
        return self.result.stdout

    @property
    def ops(self) -> dict[str, list[str]]:
        """The operations of each resource, by resource name."""
        ops: dict[str, list[str]] = {}
        for step in self.steps:
            ops.setdefault(step.name, []).append(step.op)
        return ops

    def changes(self) -> set[tuple[str, str, str]]:
        """(type, name, operation) of every step that is not ``same``."""
        return {(s.type, s.name, s.op) for s in self.steps if s.op != "same"}

    def changed_properties(self) -> set[str]:
        """The properties the engine's diff display marks as changed (run with ``diff=True``).

        Dynamic providers send no per-property diff, so the engine shows the difference
        between the old and the new inputs.
        """
        return set(CHANGED_PROPERTY.findall(self.stdout))


def engine_env(root: Path, path_dirs: list[Path | None]) -> dict[str, str]:
    """The environment of a private Pulumi installation under ``root`` (created here): a file
    backend, its own PULUMI_HOME, passphrase secrets, nothing fetched; ``path_dirs`` go first on
    PATH."""
    backend, home = root / "backend", root / "pulumi-home"
    for path in (backend, home):
        path.mkdir(parents=True, exist_ok=True)
    first = os.pathsep.join(str(d) for d in path_dirs if d is not None)
    return {
        "PATH": f"{first}{os.pathsep}{os.environ.get('PATH', '')}",
        "PULUMI_HOME": str(home),
        "PULUMI_BACKEND_URL": f"file://{backend}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
    }


class Engine:
    """A private Pulumi installation under ``root`` that runs inline programs."""

    def __init__(self, root: Path) -> None:
        pulumi = tool("pulumi")
        tool("pulumi-resource-pulumi-python")
        self.root = root
        self.backend = root / "backend"
        self.home = root / "pulumi-home"
        self.env = engine_env(root, [pulumi.parent, Path(sys.executable).parent])
        self.command = auto.PulumiCommand(root=str(pulumi.parent.parent))

    def stack(
        self, program: Callable[[], None], name: str = "dev", project: str = PROJECT
    ) -> auto.Stack:
        """A new (or the existing) stack ``name`` of ``project`` running ``program``."""
        settings = auto.ProjectSettings(
            name=project,
            runtime="python",
            backend=auto.ProjectBackend(url=self.env["PULUMI_BACKEND_URL"]),
        )
        work_dir = self.root / "work"
        work_dir.mkdir(exist_ok=True)
        return auto.create_or_select_stack(
            stack_name=name,
            project_name=project,
            program=program,
            opts=auto.LocalWorkspaceOptions(
                work_dir=str(work_dir),
                pulumi_home=str(self.home),
                env_vars=self.env,
                project_settings=settings,
                secrets_provider="passphrase",
                pulumi_command=self.command,
            ),
        )

    def cli(self, *args: str) -> str:
        """Run the ``pulumi`` CLI in the stack's project directory; its stdout."""
        done = subprocess.run(
            [self.command.command, *args],
            cwd=self.root / "work",
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        return done.stdout

    def files(self) -> list[Path]:
        """Every file the backend holds: checkpoints, history, backups."""
        return [path for path in self.backend.rglob("*") if path.is_file()]


def run(operation: Callable[..., Any], **options: Any) -> Outcome:
    """Run ``stack.up``/``preview``/``refresh``/``destroy``, recording each resource's steps."""
    steps: list[Step] = []

    def record(event: auto.EngineEvent) -> None:
        pre = event.resource_pre_event
        if pre and not pre.metadata.type.startswith(("pulumi:pulumi:", "pulumi:providers:")):
            meta = pre.metadata
            steps.append(Step(meta.type, meta.urn.rsplit("::", 1)[-1], meta.op.value))

    result = operation(on_event=record, **options)
    return Outcome(result, steps)


@dataclass(frozen=True)
class Credentials:
    """The plain credentials the stack is configured with (no repr: failure texts show it)."""

    values: tuple[str, ...] = field(repr=False)
