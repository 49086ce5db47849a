"""The image tier (``make test-real``): images built with buildah from the repository's files.

Images live in the project's own store under ``~/.cache/gha-scalesets/images``, on a Python base
image made once from Debian's packages (toolchain/images.py): the first run takes a few minutes,
later ones reuse the base and buildah's layer cache. Missing tools are installed with apt-get
when possible, otherwise the tests fail saying what to install (they never skip).
"""

from __future__ import annotations

import hashlib
import io
import platform
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def buildah() -> images.Buildah:
    try:
        return images.Buildah.default()
    except images.ImageError as missing:
        pytest.fail(str(missing), pytrace=False)


@pytest.fixture(scope="session")
def base_image(buildah: images.Buildah) -> str:
    return images.base_image(buildah)


@pytest.fixture(scope="session")
def listener_image(base_image: str) -> str:
    """The listener image built from the repository's Dockerfile as it is, by the command
    `make image` runs."""
    tag = "localhost/gha-scalesets-listener:image-tier"
    done = subprocess.run(
        [sys.executable, "-m", "toolchain.images", "listener", "--tag", tag],
        cwd=images.ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if done.returncode != 0:
        pytest.fail(f"building the listener image failed:\n{done.stderr[-4000:]}", pytrace=False)
    assert f"images: built {tag}" in done.stderr
    return tag


@dataclass(frozen=True)
class RunnerRelease:
    """A stand-in actions-runner release tarball (github.com is out of reach in tests)."""

    directory: Path
    name: str
    sha256: str

    @property
    def path(self) -> Path:
        return self.directory / self.name


@pytest.fixture(scope="session")
def runner_release(tmp_path_factory: pytest.TempPathFactory) -> RunnerRelease:
    files = {"run.sh": FAKE_RUN_SH, "bin/installdependencies.sh": FAKE_INSTALL_DEPENDENCIES}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size, info.mode = len(text), 0o755
            archive.addfile(info, io.BytesIO(text.encode()))
    directory = tmp_path_factory.mktemp("runner-release")
    release = RunnerRelease(
        directory,
        f"actions-runner-linux-{RUNNER_ARCH}-{RUNNER_VERSION}.tar.gz",
        hashlib.sha256(buffer.getvalue()).hexdigest(),
    )
    release.path.write_bytes(buffer.getvalue())
    return release
