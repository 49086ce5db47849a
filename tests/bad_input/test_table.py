"""Every case of the bad-input table is tried, and the documented table is the generated one."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from gha_scalesets.components import ListenerConfigError, ScaleSetListener
from gha_scalesets.listener.__main__ import cli
from gha_scalesets.providers import ScaleSet, ScaleSetArgs, ScaleSetInputError
from tests.bad_input import cases
from tests.bad_input.cases import CASES, COMPONENT, LISTENER, SCALE_SET, STACK, Case
from tests.support.components import listener_args
from tests.support.programs import config_map, example_values, run_program
from tests.support.pulumi_mocks import Recorder, run

LISTENER_BASE = {
    "github_config_url": "https://github.com/acme",
    "credentials": {"token": "ghp_example_only"},
    "scale_sets": [{"name": "linux-x64"}],
}


def _problems(error: BaseException | str) -> list[str]:
    return [line.removeprefix("  - ") for line in str(error).splitlines()[1:]]


def _replaced(value: Any, path: list[str | int], new: Any) -> Any:
    """``value`` (dataclasses, lists, dicts) with ``new`` at ``path``."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value, **{head: _replaced(getattr(value, head), rest, new)})  # type: ignore[arg-type,misc]
    copy = list(value) if isinstance(value, list | tuple) else dict(value)
    copy[head] = _replaced(copy[head], rest, new)  # type: ignore[index]
    return copy


def _stack(case: Case) -> list[str]:
    values = example_values(case.base)
    for path, value in case.changes.items():
        cases.set_path(values, path, value)
    with pytest.raises(ListenerConfigError) as caught:
        run_program("dev", config_map(values), plain=case.plain)
    return _problems(caught.value)


def _component(case: Case) -> list[str]:
    Recorder().install()

    def build() -> dict[str, Any]:
        args = listener_args(case.base)
        for path, value in case.changes.items():
            args = _replaced(args, cases.segments(path), value)
        return {"id": ScaleSetListener("ci", args).listener_id}

    with pytest.raises(ListenerConfigError) as caught:
        run(build)
    return _problems(caught.value)


def _scale_set(case: Case) -> list[str]:
    Recorder().install()
    given = {"github_config_url": "https://github.com/acme", "name": "linux-x64",
             "github_token": "ghp_example_only"} | case.changes  # fmt: skip

    with pytest.raises(ScaleSetInputError) as caught:
        run(lambda: {"id": ScaleSet("linux", ScaleSetArgs(**given)).id})
    return _problems(caught.value)


def _listener(case: Case, tmp_path: Path) -> list[str]:
    settings = yaml.safe_load(yaml.safe_dump(LISTENER_BASE))
    for path, value in case.changes.items():
        cases.set_path(settings, path, value)
    path = tmp_path / "listener.yaml"
    path.write_text(yaml.safe_dump(settings))
    result = CliRunner().invoke(cli, ["check", "--config", str(path)])
    assert result.exit_code == 2, result.output
    return _problems(result.output)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.surface}: {c.message[:40]}" for c in CASES])
def test_each_wrong_input_gets_its_documented_line(
    case: Case, tmp_path: Path, pulumi_event_loop: asyncio.AbstractEventLoop
) -> None:
    if case.surface == STACK:
        lines = _stack(case)
    elif case.surface == COMPONENT:
        lines = _component(case)
    elif case.surface == SCALE_SET:
        lines = _scale_set(case)
    else:
        lines = _listener(case, tmp_path)
    assert case.message in lines


def test_the_table_covers_every_surface_with_thirty_cases_or_more() -> None:
    assert len(CASES) >= 30
    assert {c.surface for c in CASES} == {STACK, COMPONENT, SCALE_SET, LISTENER}
    assert len({c.message for c in CASES}) == len(CASES)


def test_the_documented_table_is_the_generated_one() -> None:
    committed = cases.DOC.read_text()
    assert cases.render(committed) == committed, (
        "docs/configuration.md's bad-input table is stale: run `python -m tests.bad_input.cases`"
    )
