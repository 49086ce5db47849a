"""Runner images: the ECS runner image and the EC2 AMI recipe (images/runner/install-runner.sh).

github.com is out of reach here, so the actions runner is a stand-in release tarball (a
``run.sh`` that reports what it was started with, and a ``bin/installdependencies.sh`` that
records it ran); everything else is real: the Dockerfile built with buildah, Debian's packages
(the AWS CLI among them), the checksum check, the component's own task entrypoint run in the
image against moto's SSM through the real AWS CLI, and the install script under a Debian rootfs.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import boto3
import pytest

from gha_scalesets.components.ecs import runner_container
from gha_scalesets.contract.boot import JIT_READ_ATTEMPTS, runner_entrypoint
from gha_scalesets.contract.names import JIT_PARAMETER_PATH_ENV
from tests.fixtures.secret_scan import declare_secret
from tests.image.aws_proxy import AwsTlsProxy
from tests.support.aws import REGION as AWS_REGION
from tests.support.runner_release import RUNNER_VERSION, RunnerRelease
from toolchain import images

PARAMETER_PATH = "/gha-scalesets/image-tier/ci/jit/42"
TASK_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
TASK_ARN = f"arn:aws:ecs:{AWS_REGION}:123456789012:task/runners/{TASK_ID}"
SSM_HOST = f"ssm.{AWS_REGION}.amazonaws.com"
# Stands in for `sleep` in the entrypoint's retries: records each wait, returns at once.
SLEEP_SHIM = '#!/bin/sh\necho "$1" >> /shim/waits\n'


@pytest.fixture(scope="module")
def runner_image(
    buildah: images.Buildah,
    base_image: str,
    runner_release: RunnerRelease,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """images/runner built as it is, with the release tarball put into its context."""
    context = tmp_path_factory.mktemp("runner-context") / "runner"
    shutil.copytree(images.RUNNER_CONTEXT, context)
    shutil.copy(runner_release.path, context)
    return images.build_runner(
        buildah,
        tag="localhost/gha-scalesets-runner:image-tier",
        source=".",
        sha256=runner_release.sha256,
        context=context,
        base=base_image,
    )


@pytest.fixture
def aws_proxy(aws: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsTlsProxy]:
    directory = tmp_path_factory.mktemp("aws-proxy")
    directory.chmod(0o755)  # the CA certificate is mounted for the image's non-root user
    proxy = AwsTlsProxy(aws, [SSM_HOST], directory).start()
    try:
        yield proxy
    finally:
        proxy.close()


class TaskMetadata(http.server.ThreadingHTTPServer):
    """ECS's task metadata endpoint (v4) on the host: ``GET /task`` names the task's ARN."""

    def __init__(self) -> None:
        body = json.dumps({"TaskARN": TASK_ARN, "Family": "runners"}).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status = 200 if self.path == "/task" else 404
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) if status == 200 else 0))
                self.end_headers()
                if status == 200:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def task_metadata() -> Iterator[TaskMetadata]:
    server = TaskMetadata()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def sleep_shim(tmp_path: Path) -> Path:
    shim = tmp_path / "shim"
    shim.mkdir()
    shim.chmod(0o777)  # the image's non-root user records its waits here
    (shim / "sleep").write_text(SLEEP_SHIM)
    (shim / "sleep").chmod(0o755)
    return shim


def test_the_runner_image_runs_the_runner_as_a_numeric_non_root_user(buildah, runner_image) -> None:
    config = buildah.config(runner_image)

    assert (config["User"], config["WorkingDir"]) == ("1001:1001", "/home/runner")
    assert config["Cmd"] == ["/home/runner/run.sh"]  # where the component's entrypoint execs


def _entrypoint_run(
    buildah: images.Buildah,
    image: str,
    proxy: AwsTlsProxy,
    metadata: TaskMetadata,
    shim: Path,
) -> subprocess.CompletedProcess[str]:
    """The runner container as the component's task definition starts it: its entryPoint and
    command, the listener's environment override, ECS's metadata endpoint and task-role
    credential variables present; ``sleep`` is the shim in ``shim``."""
    container_definition = runner_container(image, "runners", AWS_REGION)
    assert container_definition["command"] == [runner_entrypoint(AWS_REGION)]
    image_path = next(
        e.split("=", 1)[1] for e in buildah.config(image)["Env"] if e.startswith("PATH=")
    )
    env = {
        JIT_PARAMETER_PATH_ENV: PARAMETER_PATH,
        "ECS_CONTAINER_METADATA_URI_V4": metadata.url,
        "NO_PROXY": "127.0.0.1",
        "PATH": f"/shim:{image_path}",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/task-role",
        # moto's dummy keys stand in for the task role; the proxy for AWS's endpoint.
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "HTTPS_PROXY": proxy.url,
        "AWS_CA_BUNDLE": f"/aws-ca/{proxy.ca_file.name}",
    }
    with buildah.container(image) as container:
        command = buildah.run_command(
            container,
            [*container_definition["entryPoint"], *container_definition["command"]],
            user=buildah.config(image)["User"],
            env=env,
            volumes=[f"{proxy.ca_file.parent}:/aws-ca:ro", f"{shim}:/shim"],
        )
        return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_the_task_entrypoint_fetches_the_jit_config_with_the_aws_cli_and_starts_the_runner(
    buildah, runner_image, aws_proxy, task_metadata, sleep_shim
) -> None:
    jit_config = base64.b64encode(b'{"runner": "ci-runner-7", "secret": "one-time"}').decode()
    declare_secret(jit_config)
    ssm = boto3.client("ssm", region_name=AWS_REGION)
    ssm.put_parameter(Name=f"{PARAMETER_PATH}/{TASK_ID}", Value=jit_config, Type="SecureString")

    done = _entrypoint_run(buildah, runner_image, aws_proxy, task_metadata, sleep_shim)

    assert done.returncode == 0, done.stderr[-2000:]
    report = dict(
        pair.split("=", 1)
        for line in done.stdout.splitlines()
        if line.startswith("runner: ")
        for pair in line.removeprefix("runner: ").split()
    )
    assert report == {
        "uid": "1001",
        "cwd": "/home/runner",
        "jit-sha256": hashlib.sha256(jit_config.encode()).hexdigest(),
        "parameter": "unset",  # the runner's job steps see neither the parameter's name
        "task-credentials": "unset",  # nor the task role's credentials
    }
    assert ssm.describe_parameters()["Parameters"] == []  # read once, then deleted
    assert set(aws_proxy.tunnels) == {f"{SSM_HOST}:443"}  # the real CLI, AWS's real host name
    assert jit_config not in done.stdout + done.stderr


def test_the_task_entrypoint_starts_no_runner_without_its_parameter(
    buildah, runner_image, aws_proxy, task_metadata, sleep_shim
) -> None:
    """It retries the read (a fast boot can race the listener's write), then gives up."""
    done = _entrypoint_run(buildah, runner_image, aws_proxy, task_metadata, sleep_shim)

    assert done.returncode != 0
    assert "ParameterNotFound" in done.stderr
    assert f"after {JIT_READ_ATTEMPTS} attempts" in done.stderr
    assert len((sleep_shim / "waits").read_text().split()) == JIT_READ_ATTEMPTS - 1
    assert "runner:" not in done.stdout


class ReleaseServer:
    """A mirror of GitHub's release downloads (``/v<version>/<tarball>``) on 127.0.0.1."""

    def __init__(self, release: RunnerRelease, root: Path) -> None:
        (root / f"v{RUNNER_VERSION}").mkdir(parents=True)
        shutil.copy(release.path, root / f"v{RUNNER_VERSION}")
        handler = partial(_QuietHandler, directory=str(root))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def release_server(runner_release: RunnerRelease, tmp_path: Path) -> Iterator[ReleaseServer]:
    server = ReleaseServer(runner_release, tmp_path / "mirror")
    try:
        yield server
    finally:
        server.close()


def test_install_runner_bakes_an_ec2_runner_ami_on_debian(
    buildah, base_image, runner_release, release_server
) -> None:
    """On a Debian rootfs (the base image, not a container image build), as for an AMI bake:
    the script downloads the release from a mirror, checks it and leaves what the component's
    EC2 user data needs; a tarball with another checksum is refused and nothing installed."""

    def install(container: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = buildah.run_command(
            container,
            ["/recipe/install-runner.sh", "--from", release_server.url, *args],
            volumes=[f"{images.RUNNER_CONTEXT}:/recipe:ro", *images.ca_volumes()],
        )
        return subprocess.run(command, capture_output=True, text=True, timeout=600)

    with buildah.container(base_image) as container:
        installed = install(container, "--sha256", runner_release.sha256)
        assert installed.returncode == 0, installed.stderr[-3000:]
        assert f"actions runner {RUNNER_VERSION}" in installed.stderr

        tampered = install(container, "--sha256", "0" * 64, "--dir", "/opt/other-runner")
        assert tampered.returncode != 0
        assert "does not have the SHA-256" in tampered.stderr

        check = buildah.run_command(
            container,
            [
                "bash",
                "-c",
                "stat -c '%U %a' /opt/actions-runner/run.sh;"
                " cat /opt/actions-runner/.dependencies-installed;"
                " for c in bash curl aws runuser; do command -v $c >/dev/null || echo missing $c;"
                " done; aws --version | cut -d. -f1; test -e /opt/other-runner || echo clean",
            ],
        )
        report = subprocess.run(check, capture_output=True, text=True, timeout=60).stdout

    assert report.splitlines() == [
        "runner 755",  # the EC2 user data runs it with `runuser -u runner`
        "installdependencies: uid=0",
        "aws-cli/2",  # Debian's AWS CLI v2, what the user data's `aws ssm` calls use
        "clean",
    ]
