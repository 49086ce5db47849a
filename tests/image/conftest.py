"""The image tier (``make test-real``): images built with buildah from the repository's files.

Images live in the project's own store under ``~/.cache/gha-scalesets/images``, on a Python base
image made once from Debian's packages (toolchain/images.py): the first run takes a few minutes,
later ones reuse the base and buildah's layer cache. Missing tools are installed with apt-get
when possible, otherwise the tests fail saying what to install (they never skip).
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile

import pytest

from tests.support.runner_release import (
    FAKE_INSTALL_DEPENDENCIES,
    FAKE_RUN_SH,
    RUNNER_ARCH,
    RUNNER_VERSION,
    RunnerRelease,
)
from toolchain import images


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
