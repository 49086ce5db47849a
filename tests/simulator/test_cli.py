"""``python -m gha_scalesets.simulator``: help, and a real server process configured from flags."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.simulator.raw import app_jwt

AppCreds = tuple[str, int, str]


def test_help_lists_the_options() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gha_scalesets.simulator", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    for option in ("--pat", "--app", "--long-poll-seconds", "--ghes-acquire", "--latency-ms"):
        assert option in done.stdout


@pytest.fixture
def cli_server(
    tmp_path: Path, sim_app_credentials: AppCreds, secret_input: Callable[[Path], Path]
) -> Iterator[str]:
    client_id, installation_id, pem = sim_app_credentials
    pem_file = secret_input(tmp_path / "app.pem")
    pem_file.write_text(pem)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gha_scalesets.simulator",
            "--port",
            "0",
            "--pat",
            "ghp_cli",
            "--app",
            f"{client_id}:{installation_id}:{pem_file}",
            "--long-poll-seconds",
            "0.2",
            "--limits",
            '{"classes": {"rest": {"requests_per_hour": 5}}}',
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", banner)
        assert match, (
            f"no URL in {banner!r}; stderr: {process.stderr.read() if process.stderr else ''}"
        )
        yield match.group(0)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_server_process_serves_the_configured_credentials(
    cli_server: str, sim_app_credentials: AppCreds
) -> None:
    client_id, installation_id, pem = sim_app_credentials
    with httpx.Client(base_url=cli_server, timeout=30) as http:
        # the socket is bound before the banner, so early requests wait in the backlog
        clock = http.get("/_sim/clock").json()["now"]
        token = http.post(
            f"/api/v3/app/installations/{installation_id}/access_tokens",
            headers={"Authorization": f"Bearer {app_jwt(client_id, pem, clock)}"},
        )
        assert token.status_code == 201
        pat = http.post(
            "/api/v3/orgs/acme/actions/runners/registration-token",
            headers={"Authorization": "Bearer ghp_cli"},
        )
        assert pat.status_code == 201
        assert pat.headers["X-RateLimit-Limit"] == "5"  # --limits


@pytest.mark.parametrize(
    ("flag", "value", "explained"),
    [
        ("--app", "id:notanumber:missing.pem", "CLIENT_ID:INSTALLATION_ID:PEM_FILE"),
        ("--limits", '{"classes": {"x": {}}}', "classes.x"),
    ],
)
def test_a_bad_flag_is_an_actionable_error(flag: str, value: str, explained: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gha_scalesets.simulator", flag, value],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode != 0
    assert explained in done.stderr
