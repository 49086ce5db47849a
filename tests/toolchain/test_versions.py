"""One version (the package's ``__version__``) everywhere it is named, and the licence."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

from gha_scalesets import __version__
from gha_scalesets.scaleset.conventions import UserAgent

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Where a document names a released artifact by version: image tags, the git tag, User-Agent.
VERSION_MENTIONS = re.compile(
    r"gha-scalesets-(?:listener|runner):(\d+\.\d+\.\d+)"
    r"|gha-scalesets@v(\d+\.\d+\.\d+)"
    r"|\"system\":\"gha-scalesets\",\"version\":\"(\d+\.\d+\.\d+)\""
)


def test_the_licence_is_apache_2() -> None:
    text = (ROOT / "LICENSE").read_text()

    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert PYPROJECT["project"]["license"] == "Apache-2.0"


def _documents() -> list[Path]:
    return [
        ROOT / "README.md",
        ROOT / "Makefile",
        *ROOT.glob("Pulumi.example-*.yaml"),
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "examples").rglob("*.py"),
        *(ROOT / "examples").rglob("*.txt"),
    ]


def test_one_version_the_user_agent_the_image_tags_and_the_docs_read() -> None:
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert json.loads(str(UserAgent()))["version"] == __version__

    stale = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in _documents()
        for match in VERSION_MENTIONS.finditer(path.read_text())
        if __version__ not in match.groups()
    ]
    assert stale == []
    mentions = sum(len(VERSION_MENTIONS.findall(p.read_text())) for p in _documents())
    assert mentions > 5


def test_make_image_tags_with_the_package_version() -> None:
    done = subprocess.run(
        ["make", "-n", "image", "runner-image"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert f"--tag gha-scalesets-listener:{__version__}" in done.stdout
    assert f"--tag gha-scalesets-runner:{__version__}" in done.stdout
