"""The workflows that publish the images pass actionlint (the pinned one of the toolchain), and
actionlint does catch a broken workflow."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.fixtures.toolchain import require_tool
from toolchain import images

WORKFLOWS = images.ROOT / ".github" / "workflows"


def _actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    command = [str(require_tool("actionlint")), "-no-color", *map(str, files)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_the_workflows_pass_actionlint() -> None:
    workflows = sorted(WORKFLOWS.glob("*.yml"))

    done = _actionlint(*workflows)

    assert [w.name for w in workflows] == ["ci.yml", "release.yml"]
    assert (done.returncode, done.stdout) == (0, "")


def test_actionlint_fails_a_workflow_with_a_broken_expression(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "release.yml"
    broken.parent.mkdir(parents=True)
    shutil.copy(WORKFLOWS / "release.yml", broken)
    text = broken.read_text()
    broken.write_text(text.replace("steps.name.outputs.ref", "steps.nmae.outputs.ref", 1))

    done = _actionlint(broken)

    assert done.returncode == 1
    assert 'property "nmae" is not defined' in done.stdout
