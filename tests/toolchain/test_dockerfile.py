"""The listener image copies every directory the package installs from, and .dockerignore's
allow-list sends them (a fast check: the image tier builds it, under `make test-real`)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_dockerfile_copies_every_package_directory() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    sources = {path.rstrip("/") for path in setuptools["package-dir"].values()}
    copied = set(re.findall(r"^COPY (\S+?)/? \S+$", (ROOT / "Dockerfile").read_text(), re.M))
    sent = set(re.findall(r"^!(\S+?)/?$", (ROOT / ".dockerignore").read_text(), re.M))
    assert not sources - copied, f"the Dockerfile does not COPY {sorted(sources - copied)}"
    assert not sources - sent, f".dockerignore leaves out {sorted(sources - sent)}"
