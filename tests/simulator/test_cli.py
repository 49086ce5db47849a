"""``python -m gha_scalesets.simulator``: help, and a real server process configured from flags."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from gha_scalesets.simulator import __main__ as simulator_cli
from gha_scalesets.simulator.config import SimulatorConfig
from gha_scalesets.simulator.faults import FaultSettings
from gha_scalesets.simulator.testing import SimulatorServer
from tests.simulator.raw import app_jwt

AppCreds = tuple[str, int, str]


def test_help_lists_an_option_per_setting() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gha_scalesets.simulator", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    listed = set(re.findall(r"^\s+(--[a-z-]+)", done.stdout, re.MULTILINE))
    settings = [
        *(n for n in SimulatorConfig.model_fields if n not in ("faults", "record_secrets")),
        *FaultSettings.model_fields,
    ]
    renamed = {"pats": "pat", "unscoped_pats": "unscoped_pat", "apps": "app",
               "runner_groups": "runner_group", "routes": "fault_route"}  # fmt: skip
    wanted = {"--" + renamed.get(n, n).replace("_", "-") for n in settings}
    assert "--registration-token-ttl-seconds" in wanted
    assert sorted(wanted - listed) == []
    assert "``" not in done.stdout


def test_options_build_the_config_the_test_helper_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    """One definition: the command line's values make the same SimulatorConfig as the
    keyword arguments of SimulatorServer (bar the secret recording of test servers)."""
    served: list[SimulatorConfig] = []

    class Server:
        def __init__(self, config: SimulatorConfig, log_level: str) -> None:
            served.append(config)

        def run(self, sockets: list[Any]) -> None:
            sockets[0].close()

    monkeypatch.setattr(simulator_cli, "build_server", Server)
    args = ["--port", "0", "--pat", "a", "--pat", "b", "--runner-group", "gpu", "--seed", "7",
            "--registration-token-ttl-seconds", "60", "--latency-ms", "5",
            "--fault-route", "GET /message", "--ghes-acquire"]  # fmt: skip
    result = CliRunner().invoke(simulator_cli.cli, args)
    assert result.exit_code == 0, result.output

    helper = SimulatorServer(
        pats=["a", "b"],
        runner_groups=["gpu"],
        seed=7,
        registration_token_ttl_seconds=60,
        faults={"latency_ms": 5, "routes": ["GET /message"]},
        ghes_acquire=True,
    )
    assert served == [helper.config.model_copy(update={"record_secrets": False})]


def test_a_bad_setting_is_named() -> None:
    result = CliRunner().invoke(simulator_cli.cli, ["--long-poll-seconds", "0"])
    assert result.exit_code == 2
    assert "long_poll_seconds: Input should be greater than 0" in result.output


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
