"""Run the project's own program (``__main__.py``) under Pulumi mocks with a stack's config."""

from __future__ import annotations

import json
import runpy
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from gha_scalesets.components import ListenerConfigError
from gha_scalesets.components.config_keys import secret_keys
from tests.support.components import TOKEN
from tests.support.pulumi_mocks import Recorder, run

ROOT = Path(__file__).resolve().parents[2]
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]
EXAMPLES = ROOT / "examples"


def project_of(example: str) -> str:
    """The project name of ``examples/<example>/Pulumi.yaml`` (the namespace of its config)."""
    return yaml.safe_load((EXAMPLES / example / "Pulumi.yaml").read_text())["name"]


def example_values(example: str) -> dict[str, Any]:
    """``Pulumi.example-<example>.yaml``'s config by key (the project's without its namespace),
    plus the token its header says to set."""
    config = yaml.safe_load((ROOT / f"Pulumi.example-{example}.yaml").read_text())["config"]
    return {k.removeprefix(f"{PROJECT}:"): v for k, v in config.items()} | {"githubToken": TOKEN}


def config_map(values: dict[str, Any]) -> dict[str, str]:
    """The config map the CLI hands a program: full keys, objects and lists as JSON text; a
    None value is unset."""
    return {
        key if ":" in key else f"{PROJECT}:{key}": v if isinstance(v, str) else json.dumps(v)
        for key, v in values.items()
        if v is not None
    }


def example_config(example: str, **changes: Any) -> dict[str, str]:
    """An example stack's config map with ``changes`` by key (None: unset)."""
    return config_map(example_values(example) | changes)


def run_program(
    stack: str,
    config: dict[str, str],
    plain: Collection[str] = (),
    recorder: Recorder | None = None,
) -> tuple[Recorder, dict[str, Any]]:
    """``__main__.py`` as ``pulumi up`` runs it; secret keys are set with ``--secret`` except
    those in ``plain``. Returns the registrations and the stack outputs."""
    # A fresh root stack resource: set_mocks keeps the last one, with its exports.
    pulumi.runtime.settings.ROOT.set(None)
    recorder = (recorder or Recorder()).install(stack=stack)
    secrets = [f"{PROJECT}:{key}" for key in secret_keys() if key not in plain]
    pulumi.runtime.set_all_config(config, secrets)

    def program() -> dict[str, Any]:
        runpy.run_path(str(ROOT / "__main__.py"))
        return dict(pulumi.runtime.settings.get_root_resource().outputs)  # type: ignore[union-attr]

    return recorder, run(program)


TITLE = "invalid stack configuration; fix each key below with `pulumi config set"


def refused(example: str, plain: Sequence[str] = (), **changes: Any) -> list[str]:
    """The problem lines of the program run with ``changes`` to an example stack; asserts
    that nothing was declared."""
    recorder = Recorder()
    with pytest.raises(ListenerConfigError) as caught:
        run_program("dev", example_config(example, **changes), plain, recorder)
    message = str(caught.value)
    assert message.startswith(TITLE)
    assert TOKEN not in message
    assert recorder.resources == []
    return [line.removeprefix("  - ") for line in message.splitlines()[1:]]
