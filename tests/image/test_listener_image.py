"""The listener image, built from the repository's Dockerfile and run the way it is deployed.

Each check runs in the image as its own user (10001) from ``/``, where no source tree is
importable: what runs is what the wheel installed. The module list comes from the repository's
``listener/`` directory, so a module the image lacks is a failure, not a gap nobody looked at.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.secret_scan import declare_secret_input
from tests.fixtures.sim import SIM_PAT
from tests.support.github import ORG, create_scale_set, jobs_done
from tests.support.observe import FleetPeak
from tests.support.waits import wait_for
from toolchain import images

ENTRYPOINT = ["python", "-m", "gha_scalesets.listener"]
LISTENER_MODULES = sorted(
    "gha_scalesets." + ".".join(path.relative_to(images.ROOT).with_suffix("").parts)
    for path in (images.ROOT / "listener").rglob("*.py")
    if path.name != "__init__.py"
)
# Imports each module named on the command line; prints the failures and the files outside the
# installed environment (a source tree on sys.path would hide a packaging mistake).
_IMPORT_ALL = """
import importlib, json, sys
problems = []
for name in sys.argv[1:]:
    try:
        module = importlib.import_module(name)
    except Exception as error:
        problems.append(f"{name}: {type(error).__name__}: {error}")
    else:
        if not module.__file__.startswith(sys.prefix):
            problems.append(f"{name}: imported from {module.__file__}, not the image's venv")
print(json.dumps(problems))
"""
Run = Callable[..., subprocess.CompletedProcess[str]]


@contextlib.contextmanager
def in_image(buildah: images.Buildah, image: str) -> Iterator[Run]:
    """Run commands in a container of ``image`` as the image's user, from ``/``."""
    user = buildah.config(image).get("User")
    with buildah.container(image) as container:

        def run(*argv: str) -> subprocess.CompletedProcess[str]:
            command = buildah.run_command(container, argv, user=user, workdir="/")
            return subprocess.run(command, capture_output=True, text=True, timeout=180)

        yield run


@pytest.fixture(scope="module")
def run_in(buildah: images.Buildah, listener_image: str) -> Iterator[Run]:
    with in_image(buildah, listener_image) as run:
        yield run


def help_problem(run: Run) -> str | None:
    done = run(*ENTRYPOINT, "--help")
    if done.returncode != 0 or "run" not in done.stdout:
        return f"`python -m gha_scalesets.listener --help` failed: {done.stderr[-2000:]}"
    return None


def pip_problem(run: Run) -> str | None:
    done = run("pip", "check")
    if done.returncode != 0:
        return f"`pip check` in the image: {done.stdout}{done.stderr[-1000:]}"
    return None


def import_problems(run: Run) -> list[str]:
    done = run("python", "-c", _IMPORT_ALL, *LISTENER_MODULES)
    if done.returncode != 0:
        return [f"the import check did not run: {done.stderr[-2000:]}"]
    return json.loads(done.stdout)


def image_problems(buildah: images.Buildah, image: str) -> list[str]:
    """Every check of a listener image; empty when it is fit to deploy."""
    problems = []
    config = buildah.config(image)
    if config.get("User") != "10001:10001":
        problems.append(f"runs as {config.get('User')!r}, not the numeric user 10001:10001")
    if config.get("Entrypoint") != ENTRYPOINT:
        problems.append(f"entrypoint {config.get('Entrypoint')!r}, not {ENTRYPOINT!r}")
    with in_image(buildah, image) as run:
        problems += [p for p in (help_problem(run), pip_problem(run)) if p]
        problems += import_problems(run)
    return problems


def test_the_image_runs_the_listener_as_user_10001(buildah, listener_image) -> None:
    config = buildah.config(listener_image)

    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ENTRYPOINT
    assert config["Cmd"] == ["run"]
    assert config["Labels"]["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert config["Labels"]["org.opencontainers.image.version"] == images.__version__


def test_help_answers_in_the_image(run_in) -> None:
    assert help_problem(run_in) is None
    assert run_in("id", "-u").stdout.strip() == "10001"


def test_pip_check_is_clean_in_the_image(run_in) -> None:
    assert pip_problem(run_in) is None


def test_every_listener_module_imports_from_the_installed_package(run_in) -> None:
    assert len(LISTENER_MODULES) > 30  # the whole listener, its runtimes and registries
    assert import_problems(run_in) == []


def _build_broken(
    buildah: images.Buildah, base_image: str, tmp_path: Path, old: str, new: str, tag: str
) -> str:
    """Build the repository's Dockerfile with one deliberate mistake (``old`` -> ``new``)."""
    text = (images.ROOT / "Dockerfile").read_text()
    assert old in text, f"the Dockerfile no longer has {old!r}: update this test"
    dockerfile = tmp_path / "Dockerfile.broken"
    dockerfile.write_text(text.replace(old, new, 1))
    return images.build(
        buildah,
        context=images.ROOT,
        dockerfile=dockerfile,
        tag=tag,
        build_args={"PYTHON_IMAGE": base_image},
    )


def test_an_image_missing_a_listener_module_fails_the_checks(
    buildah, listener_image, base_image, tmp_path
) -> None:
    # The build itself passes (every layer before the last comes from the cache): only the
    # checks of the built image can see what it lacks.
    tag = _build_broken(
        buildah,
        base_image,
        tmp_path,
        "USER 10001:10001",
        "RUN rm /opt/venv/lib/python3*/site-packages/gha_scalesets/listener/runtimes/local.py\n"
        "USER 10001:10001",
        "localhost/gha-scalesets-listener:broken-module",
    )
    try:
        problems = image_problems(buildah, tag)
    finally:
        buildah.remove(tag)

    assert problems == [
        "gha_scalesets.listener.runtimes.local: ModuleNotFoundError: No module named"
        " 'gha_scalesets.listener.runtimes.local'"
    ]
    assert image_problems(buildah, listener_image) == []


def test_a_dockerfile_installing_without_the_listener_extra_fails_its_build(
    buildah, base_image, tmp_path
) -> None:
    tag = "localhost/gha-scalesets-listener:broken-extra"

    with pytest.raises(images.BuildFailed) as failed:
        _build_broken(buildah, base_image, tmp_path, '".[listener]"', '"."', tag)

    # The in-build smoke check, run from /, names what the install left out.
    assert "ModuleNotFoundError: No module named" in failed.value.log
    assert not buildah.exists(tag)


class ImageListener:
    """The listener started from the image: its entrypoint and command, as user 10001, on the
    host network; JSON log lines collected as they arrive."""

    def __init__(self, buildah: images.Buildah, container: str, image: str, config: Path) -> None:
        image_config = buildah.config(image)
        argv = [*image_config["Entrypoint"], *image_config["Cmd"], "--config", "/config/l.yaml"]
        command = buildah.run_command(
            container,
            argv,
            user=image_config["User"],
            workdir=image_config.get("WorkingDir") or "/",
            volumes=[f"{config}:/config:ro"],
        )
        self.logs: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            self.raw.append(line)
            if line.startswith("{"):
                self.logs.append(json.loads(line))

    def logged(self, event: str) -> int:
        return sum(1 for entry in self.logs if entry.get("event") == event)

    def processes(self) -> list[psutil.Process]:
        """The processes started in the image (the listener and its runners)."""
        try:
            return [
                p
                for p in psutil.Process(self.proc.pid).children(recursive=True)
                if p.name() != "buildah-chroot-exec" and "buildah" not in p.name()
            ]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> int:
        """SIGTERM to the listener process in the image (buildah does not forward signals)."""
        listener = next(
            (p for p in self.processes() if "gha_scalesets.listener" in " ".join(p.cmdline())),
            None,
        )
        if listener is not None:
            listener.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        finally:
            self._reader.join(timeout=5)


def _config_dir(path: Path, sim: SimulatorServer, scale_set: str, max_runners: int) -> Path:
    """The settings and token file, readable by user 10001 (mounted read-only at /config)."""
    path.mkdir(mode=0o755)
    token = declare_secret_input(path / "token")
    token.write_text(SIM_PAT)
    token.chmod(0o644)
    settings = {
        "github_config_url": sim.config_url(ORG),
        "credentials": {"token_file": "/config/token"},
        "scale_sets": [{"name": scale_set, "max_runners": max_runners}],
        "metrics_port": 0,
        "metrics_host": "127.0.0.1",
        "local": {"state_dir": "/tmp/gha-runners", "stop_grace_seconds": 2},
        "scale_down_grace_seconds": 0,
        "max_backoff_seconds": 0.5,
    }
    (path / "l.yaml").write_text(yaml.safe_dump(settings))
    (path / "l.yaml").chmod(0o644)
    return path


async def test_the_listener_from_the_image_serves_a_burst(
    buildah, listener_image, sim: SimulatorServer, tmp_path: Path
) -> None:
    await create_scale_set(sim, "image-burst")
    config = _config_dir(tmp_path / "config", sim, "image-burst", max_runners=8)
    jobs = 30
    uids: set[int] = set()
    all_done = jobs_done(sim, jobs)

    async def finished() -> bool:
        for process in listener.processes():  # who runs in the image, sampled during the burst
            with contextlib.suppress(psutil.NoSuchProcess):
                uids.add(process.uids().real)
        return await all_done()

    with buildah.container(listener_image) as container:
        listener = ImageListener(buildah, container, listener_image, config)
        try:
            await wait_for(lambda: listener.logged("session opened"), 60, "the session")
            async with FleetPeak(sim) as peak:
                sim.queue_jobs(["image-burst"], count=jobs, duration_seconds=0.2)
                await wait_for(finished, 120, f"{jobs} jobs through the image")
        finally:
            code = listener.stop()

    assert code == 0, "".join(listener.raw[-20:])
    assert listener.logged("runner process started") >= jobs
    assert listener.logged("session deleted") == 1
    assert 0 < peak.peak <= 8
    assert uids == {10001}  # the listener and every runner it started, never root
    output = "".join(listener.raw)
    assert SIM_PAT not in output and "eyJraW5k" not in output  # no PAT, no JIT config


def test_push_copies_the_image_out_of_the_store(listener_image, tmp_path) -> None:
    archive = tmp_path / "listener.tar"

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "toolchain.images",
            "push",
            listener_image,
            f"oci-archive:{archive}:gha-scalesets-listener:{images.__version__}",
        ],
        cwd=images.ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    with tarfile.open(archive) as oci:
        index = json.load(oci.extractfile("index.json"))  # type: ignore[arg-type]
        manifest = json.load(oci.extractfile(_blob(index["manifests"][0])))  # type: ignore[arg-type]
        config = json.load(oci.extractfile(_blob(manifest["config"])))  # type: ignore[arg-type]
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == (
        f"gha-scalesets-listener:{images.__version__}"
    )
    assert config["config"]["User"] == "10001:10001"


def _blob(descriptor: dict[str, Any]) -> str:
    algorithm, digest = descriptor["digest"].split(":")
    return f"blobs/{algorithm}/{digest}"
