"""Run a program of ``examples/`` as ``pulumi up`` would, under Pulumi mocks."""

from __future__ import annotations

import asyncio
import runpy
from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from tests.support.programs import EXAMPLES, project_of
from tests.support.pulumi_mocks import Recorder, run

Ran = tuple[Recorder, dict[str, Any]]


@pytest.fixture
def run_example(pulumi_event_loop: asyncio.AbstractEventLoop) -> Callable[..., Ran]:
    """``run_example(name, config, secrets)``: the recorder and the stack's exports."""

    def go(example: str, config: dict[str, str], secrets: dict[str, str]) -> Ran:
        project = project_of(example)
        pulumi.runtime.settings.ROOT.set(None)  # a fresh root stack: set_mocks keeps the last
        recorder = Recorder().install(stack="dev", project=project)
        keys = {f"{project}:{k}": v for k, v in (config | secrets).items()}
        pulumi.runtime.set_all_config(keys, [f"{project}:{k}" for k in secrets])

        def program() -> dict[str, Any]:
            runpy.run_path(str(EXAMPLES / example / "__main__.py"))
            return dict(pulumi.runtime.settings.get_root_resource().outputs)  # type: ignore[union-attr]

        return recorder, run(program)

    return go
