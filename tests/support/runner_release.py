"""A stand-in actions-runner release: the version the runner image pins, and scripts that say
what the image's entrypoint and installer did."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

from toolchain import images

RUNNER_ENV = dict(
    line.split("=", 1)
    for line in (images.RUNNER_CONTEXT / "runner.env").read_text().splitlines()
    if line and not line.startswith("#")
)
RUNNER_VERSION = RUNNER_ENV["ACTIONS_RUNNER_VERSION"]
RUNNER_ARCH = {"x86_64": "x64", "aarch64": "arm64"}[platform.machine()]
# What the stand-in runner prints when the entrypoint execs it: who runs it and what it got.
FAKE_RUN_SH = """#!/bin/bash
echo "runner: uid=$(id -u) cwd=$PWD"
echo "runner: jit-sha256=$(printf '%s' "$ACTIONS_RUNNER_INPUT_JITCONFIG" | sha256sum | cut -c1-64)"
echo "runner: parameter=${GHA_JIT_PARAMETER_PATH-unset}"
echo "runner: task-credentials=${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI-unset}"
"""
# GitHub's bin/installdependencies.sh installs the runner's .NET libraries per distribution; the
# stand-in records that the installer ran it, as root.
FAKE_INSTALL_DEPENDENCIES = """#!/bin/bash
echo "installdependencies: uid=$(id -u)" > "$(dirname "$0")/../.dependencies-installed"
"""


@dataclass(frozen=True)
class RunnerRelease:
    """A stand-in actions-runner release tarball (github.com is out of reach in tests)."""

    directory: Path
    name: str
    sha256: str

    @property
    def path(self) -> Path:
        return self.directory / self.name
