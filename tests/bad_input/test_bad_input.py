"""Bad input everywhere: each mistake gets a specific, actionable error and never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from gha_scalesets.listener.__main__ import cli
from gha_scalesets.listener.config import ScaleSetConfig
from gha_scalesets.listener.startup import StartupError, resolve_scale_sets
from gha_scalesets.providers.inputs import check_inputs
from gha_scalesets.scaleset import AppCredentials, Client, PatCredentials
from gha_scalesets.scaleset.errors import CredentialsError, UnauthorizedError
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT
from tests.support.canaries import CANARY_PAT

_CONFIGS = {
    "not a mapping": ("- just\n- a list\n", "top level must be a mapping"),
    "broken yaml": ("github_config_url: [unclosed\n", "cannot read listener settings"),
    "missing url": (
        "credentials: {token: x}\nscale_sets: [{name: a}]\n",
        "github_config_url: Field required",
    ),
    "two credentials": (
        "github_config_url: https://github.com/acme\n"
        f"credentials: {{token: {CANARY_PAT}, token_file: /nonexistent}}\n"
        "scale_sets: [{name: a}]\n",
        "exactly one of token_file, token, app or secret_arn",
    ),
    "min above max": (
        "github_config_url: https://github.com/acme\ncredentials: {token: x}\n"
        "scale_sets: [{name: a, min_runners: 5, max_runners: 2}]\n",
        "min_runners (5) is above max_runners (2)",
    ),
    "runtime without section": (
        "github_config_url: https://github.com/acme\ncredentials: {token: x}\n"
        "runtime: ec2\nscale_sets: [{name: a}]\n",
        "runtime 'ec2' needs a 'ec2' section",
    ),
    "unknown key": (
        "github_config_url: https://github.com/acme\ncredentials: {token: x}\n"
        "scale_sets: [{name: a, max_runner: 3}]\n",
        "scale_sets[0].max_runner: unknown key; did you mean scale_sets[0].max_runners?",
    ),
}


@pytest.mark.parametrize("case", sorted(_CONFIGS))
def test_malformed_listener_config_is_explained(
    case: str, tmp_path: Path, secret_input: Callable[[Path], Path]
) -> None:
    text, expected = _CONFIGS[case]
    config = secret_input(tmp_path / "listener.yaml")
    config.write_text(text)
    result = CliRunner().invoke(cli, ["check", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output and CANARY_PAT not in result.output


@pytest.mark.parametrize(
    "pem",
    ["", "not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"],
)
def test_bad_pem_is_a_credentials_error(pem: str) -> None:
    with pytest.raises(CredentialsError) as error:
        AppCredentials("Iv1.x", 1, SecretStr(pem))
    assert "private key" in str(error.value).lower()


async def test_unknown_token_is_401_with_a_hint(sim: SimulatorServer) -> None:
    async with Client(sim.config_url("acme"), PatCredentials(SecretStr(CANARY_PAT))) as client:
        with pytest.raises(UnauthorizedError) as error:
            await client.get_runner_group_by_name("Default")
    assert "PAT or GitHub App credentials" in str(error.value)
    assert CANARY_PAT not in str(error.value)


def test_app_on_an_enterprise_is_refused_with_the_fix(
    sim: SimulatorServer, sim_app_credentials: tuple[str, int, str]
) -> None:
    app = AppCredentials(*sim_app_credentials[:2], SecretStr(sim_app_credentials[2]))
    with pytest.raises(CredentialsError, match="use a PAT with manage_runners:enterprise"):
        Client(sim.config_url("enterprises/big"), app)


async def test_unknown_scale_set_names_the_fix(sim: SimulatorServer) -> None:
    async with Client(sim.config_url("acme"), PatCredentials(SecretStr(SIM_PAT))) as client:
        with pytest.raises(StartupError) as error:
            await resolve_scale_sets(client, [ScaleSetConfig(name="ghost")])
    message = str(error.value)
    assert "'ghost' not found in runner group 'Default'" in message and "pulumi up" in message


@pytest.mark.parametrize(
    ("news", "prop"),
    [
        ({"github_config_url": "ftp://x", "name": "a", "github_token": "t"}, "github_config_url"),
        ({"github_config_url": "https://github.com/acme", "github_token": "t"}, "name"),
        ({"github_config_url": "https://github.com/acme", "name": "a"}, "github_token"),
        (
            {"github_config_url": "https://github.com/acme", "name": "a", "github_token": "t",
             "labels": "gpu"},
            "labels",
        ),
    ],
)  # fmt: skip
def test_invalid_provider_inputs_fail_check_per_property(
    news: dict[str, object], prop: str
) -> None:
    failures = dict(check_inputs(news).failures)
    assert failures.get(prop)
