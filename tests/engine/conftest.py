"""Fixtures of the real-engine tier: a private Pulumi installation and a scale-set program."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pulumi
import pytest
from pulumi import automation as auto

from gha_scalesets.providers import GitHubAppArgs, ScaleSet, ScaleSetArgs
from gha_scalesets.scaleset import SyncClient
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT
from tests.support.engine import ROTATED_PAT, Credentials, Declared, Engine
from tests.support.github import github_client


@pytest.fixture
def sim(sim_factory: Callable[..., SimulatorServer]) -> SimulatorServer:
    """A simulator of this test alone that also trusts the rotated PAT."""
    return sim_factory(pats=[SIM_PAT, ROTATED_PAT])


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(tmp_path)


def scale_sets_program(declared: Declared) -> Callable[[], None]:
    """An inline program declaring ``declared`` (resource name -> ScaleSetArgs fields).

    The credential comes from stack config: ``credential: "app"`` selects the GitHub App, anything
    else the PAT. The program reads ``declared`` at each run, so a test edits it between runs.
    """

    def program() -> None:
        config = pulumi.Config()
        for name, fields in declared.items():
            fields = dict(fields)
            if fields.pop("credential", "pat") == "app":
                fields["github_app"] = GitHubAppArgs(
                    client_id=config.require("appClientId"),
                    installation_id=config.require_int("appInstallationId"),
                    private_key=config.require_secret("appPrivateKey"),
                )
            else:
                fields["github_token"] = config.require_secret("githubToken")
            scale_set = ScaleSet(name, ScaleSetArgs(**fields))
            pulumi.export(f"{name}_id", scale_set.scale_set_id)
            credential = "github_app" if "github_app" in fields else "github_token"
            pulumi.export(f"{name}_credential", getattr(scale_set, credential))

    return program


@pytest.fixture
def declared(sim: SimulatorServer) -> Declared:
    return {
        "linux": {
            "github_config_url": sim.config_url("acme"),
            "name": "linux-x64",
            "labels": ["linux-x64", "docker"],
        }
    }


@pytest.fixture
def plain_credentials(sim_app_credentials: tuple[str, int, str]) -> Credentials:
    key_body = "".join(sim_app_credentials[2].splitlines()[1:-1])[:64]
    return Credentials((SIM_PAT, ROTATED_PAT, key_body))


@pytest.fixture
def stack(
    engine: Engine, declared: Declared, sim_app_credentials: tuple[str, int, str]
) -> auto.Stack:
    client_id, installation_id, key = sim_app_credentials
    created = engine.stack(scale_sets_program(declared))
    created.set_all_config(
        {
            "githubToken": auto.ConfigValue(SIM_PAT, secret=True),
            "appClientId": auto.ConfigValue(client_id),
            "appInstallationId": auto.ConfigValue(str(installation_id)),
            "appPrivateKey": auto.ConfigValue(key, secret=True),
        }
    )
    return created


@pytest.fixture
def github(sim: SimulatorServer) -> Iterator[SyncClient]:
    with github_client(sim) as client:
        yield client
