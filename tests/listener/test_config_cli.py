"""Settings (YAML or LISTENER_* variables), credentials (Secrets Manager too), CLI, logs."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from gha_scalesets.listener.__main__ import cli
from gha_scalesets.listener.config import (
    AwsConfig,
    CredentialsConfig,
    DynamoDBRegistryConfig,
    ListenerSettings,
    load_settings,
)
from gha_scalesets.listener.credentials import CredentialsLoadError, load_credentials
from gha_scalesets.listener.leadership import build_lease_store
from gha_scalesets.listener.logs import REDACTED, configure_logging
from gha_scalesets.scaleset import AppCredentials, Credentials, PatCredentials
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT
from tests.support.github import ORG, create_scale_set

SECRET = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"


def test_settings_come_from_the_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTENER_GITHUB_CONFIG_URL", "https://github.com/acme")
    monkeypatch.setenv("LISTENER_CREDENTIALS", json.dumps({"token": SECRET}))
    monkeypatch.setenv("LISTENER_SCALE_SETS", '[{"name": "linux-x64", "max_runners": 50}]')
    monkeypatch.setenv("LISTENER_REGISTRY", '{"type": "dynamodb", "table_name": "runners"}')
    settings = load_settings(None)
    assert settings.scale_sets[0].max_runners == 50
    assert isinstance(settings.registry, DynamoDBRegistryConfig)
    assert SECRET not in repr(settings)


def test_yaml_settings_and_shorthands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "listener.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "github_config_url": "https://github.com/acme",
                "credentials": {"token_file": "./token"},
                "registry": "memory",
                "scale_sets": [{"scale_set_id": 7}],
            }
        )
    )
    monkeypatch.setenv("LISTENER_METRICS_PORT", "9999")  # the file wins where it speaks
    settings = load_settings(path)
    assert settings.registry.type == "memory" and settings.metrics_port == 9999
    assert settings.scale_sets[0].scale_set_id == 7


@pytest.mark.parametrize(
    ("leadership", "expected"),
    [
        (
            {"lease_duration_seconds": 5, "renew_interval_seconds": 2},
            "renew_interval_seconds (2.0) must be at most a third of lease_duration_seconds",
        ),
        ({"store": "kubernetes"}, "leadership.store 'kubernetes' needs the 'k8s' section"),
        ({"store": "dynamodb"}, "leadership.store 'dynamodb' needs the dynamodb registry"),
    ],
)
def test_leadership_settings_are_checked(leadership: dict[str, object], expected: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(expected)):
        ListenerSettings(
            github_config_url="https://github.com/acme",
            credentials={"token": SECRET},
            scale_sets=[{"name": "linux-x64"}],
            leadership=leadership,
        )


def test_leadership_store_follows_the_runtime_and_registry() -> None:
    def store(**settings: object) -> str:
        base = {
            "github_config_url": "https://github.com/acme",
            "credentials": {"token": SECRET},
            "scale_sets": [{"name": "linux-x64"}],
        }
        return build_lease_store(ListenerSettings(**{**base, **settings})).name

    assert store() == "memory"
    assert store(registry={"type": "dynamodb", "table_name": "t", "region": "eu-west-1"}) == (
        "dynamodb"
    )
    assert store(runtime="k8s", k8s={"namespace": "ci", "api_url": "http://127.0.0.1:1"}) == (
        "kubernetes"
    )


def test_check_reports_invalid_settings_without_echoing_secrets(
    tmp_path: Path, secret_input: Callable[[Path], Path]
) -> None:
    path = secret_input(tmp_path / "bad.yaml")
    path.write_text(
        yaml.safe_dump(
            {
                "github_config_url": "https://github.com/acme",
                "credentials": {"token": SECRET, "token_file": "./token"},
                "scale_sets": [{"name": "x", "min_runners": 5, "max_runners": 2}],
            }
        )
    )
    result = CliRunner().invoke(cli, ["check", "--config", str(path)])
    assert result.exit_code == 2
    assert "  - credentials: credentials need exactly one of" in result.output
    assert "  - scale_sets[0]: min_runners (5) is above max_runners (2)" in result.output
    assert SECRET not in result.output


def test_run_explains_a_missing_scale_set(
    sim: SimulatorServer, tmp_path: Path, secret_input: Callable[[Path], Path]
) -> None:
    path = secret_input(tmp_path / "listener.yaml")
    path.write_text(
        yaml.safe_dump(
            {
                "github_config_url": sim.config_url(ORG),
                "credentials": {"token": SIM_PAT},
                "scale_sets": [{"name": "does-not-exist"}],
                "metrics_port": 0,
                "local": {"state_dir": str(tmp_path / "runners")},
            }
        )
    )
    result = CliRunner().invoke(cli, ["run", "--config", str(path)])
    assert result.exit_code == 2
    assert "scale set 'does-not-exist' not found in runner group 'Default'" in result.output
    assert "pulumi up" in result.output
    assert SIM_PAT not in result.output


async def test_check_prints_what_it_would_serve_without_a_request(
    sim: SimulatorServer, tmp_path: Path, secret_input: Callable[[Path], Path]
) -> None:
    await create_scale_set(sim, "fine")
    token = secret_input(tmp_path / "token")
    token.write_text(SIM_PAT)
    path = tmp_path / "ok.yaml"
    settings = {
        "github_config_url": sim.config_url(ORG),
        "credentials": {"token_file": str(token)},
        "registry": {"type": "dynamodb", "table_name": "runners", "region": "eu-west-1"},
        "scale_sets": [{"name": "fine", "max_runners": 3}, {"scale_set_id": 7}],
    }
    path.write_text(yaml.safe_dump(settings))
    sim.reset()

    result = CliRunner().invoke(cli, ["check", "--config", str(path)])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"ok: {path} is valid; the listener would serve",
        f"  GitHub: {sim.config_url(ORG)} (organization), credentials: a token from {token}",
        "  runtime: local: runner processes on this machine",
        "  registry: DynamoDB table runners",
        "  leadership: dynamodb lease (10 s)",
        "  metrics: 0.0.0.0:9102",
        "  connections to GitHub: 10 for long polls, 128 for the rest (up to 394 open files)",
        "  scale sets:",
        "    fine: 0..3 runners (runner group Default)",
        "    id 7: 0..10 runners (runner group Default)",
    ]
    assert sim.api_calls() == 0
    assert SIM_PAT not in result.output

    token.unlink()
    missing = CliRunner().invoke(cli, ["check", "--config", str(path)])
    assert missing.exit_code == 2
    assert f"  - credentials: cannot read the token file {token}: No such file" in missing.output

    token.write_text(SIM_PAT)
    path.write_text(yaml.safe_dump({**settings, "capacity": {"long_poll_connections": 1}}))
    short = CliRunner().invoke(cli, ["check", "--config", str(path)])
    assert short.exit_code == 2
    assert "capacity.long_poll_connections (1) is below the number of scale sets (2)" in (
        short.output
    )


async def load_credentials_one(config: CredentialsConfig, aws: AwsConfig) -> Credentials:
    [loaded] = await load_credentials([config], aws)
    return loaded


async def test_credentials_from_files_and_inline(
    tmp_path: Path,
    sim_app_credentials: tuple[str, int, str],
    secret_input: Callable[[Path], Path],
) -> None:
    token = secret_input(tmp_path / "token")
    token.write_text(SECRET + "\n")
    pat = await load_credentials_one(CredentialsConfig(token_file=token), AwsConfig())
    assert isinstance(pat, PatCredentials) and pat.token.get_secret_value() == SECRET
    client_id, installation, pem = sim_app_credentials
    key = secret_input(tmp_path / "app.pem")
    key.write_text(pem)
    app = await load_credentials_one(
        CredentialsConfig(
            app={"client_id": client_id, "installation_id": installation, "private_key_file": key}
        ),
        AwsConfig(),
    )
    assert isinstance(app, AppCredentials) and app.installation_id == installation
    with pytest.raises(CredentialsLoadError, match="cannot read the token file"):
        await load_credentials_one(CredentialsConfig(token_file=tmp_path / "missing"), AwsConfig())


async def test_credentials_from_secrets_manager(
    boto_client, aws: str, sim_app_credentials: tuple[str, int, str]
) -> None:
    secrets = boto_client("secretsmanager")
    token_arn = secrets.create_secret(
        Name="gha/token", SecretString=json.dumps({"github_token": SECRET})
    )["ARN"]
    client_id, installation, pem = sim_app_credentials
    app_arn = secrets.create_secret(
        Name="gha/app",
        SecretString=json.dumps(
            {
                "github_app": {
                    "client_id": client_id,
                    "installation_id": installation,
                    "private_key": pem,
                }
            }
        ),
    )["ARN"]
    bad_arn = secrets.create_secret(Name="gha/bad", SecretString="not json")["ARN"]
    endpoint = AwsConfig(region="us-east-1", endpoint_url=aws)

    pat = await load_credentials_one(CredentialsConfig(secret_arn=token_arn), endpoint)
    assert isinstance(pat, PatCredentials) and pat.token.get_secret_value() == SECRET
    app = await load_credentials_one(CredentialsConfig(secret_arn=app_arn), endpoint)
    assert isinstance(app, AppCredentials) and app.client_id == client_id
    with pytest.raises(CredentialsLoadError, match=re.escape('must hold JSON {"github_token"')):
        await load_credentials_one(CredentialsConfig(secret_arn=bad_arn), endpoint)
    with pytest.raises(CredentialsLoadError, match=r"ResourceNotFoundException.*GetSecretValue"):
        await load_credentials_one(CredentialsConfig(secret_arn=token_arn + "x"), endpoint)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``run`` and the log test reconfigure logging process-wide: put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.fixture
def log_stream() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("info", stream)
    return stream


def test_logs_are_json_and_redact_secrets(log_stream: io.StringIO) -> None:
    stream = log_stream
    log = structlog.get_logger("test")
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjMifQ.c2lnbmF0dXJl"
    log.info("calling", token=SECRET, url="https://x/y", note=f"header Bearer {jwt} and {SECRET}")
    log.warning("key", detail="-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["event"] == "calling" and lines[0]["url"] == "https://x/y"
    assert lines[0]["token"] == REDACTED
    assert SECRET not in stream.getvalue() and jwt not in stream.getvalue()
    assert "abc" not in lines[1]["detail"] and lines[1]["level"] == "warning"
