"""The listener with several credentials: settings, secrets holding several, and a burst
shared by two PATs under the simulator's rate limits, with their budgets as metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from gha_scalesets.listener.config import AwsConfig, CredentialsConfig, ListenerSettings
from gha_scalesets.listener.credentials import CredentialsLoadError, load_credentials
from gha_scalesets.listener.session import is_transient
from gha_scalesets.scaleset import AppCredentials, PatCredentials
from gha_scalesets.scaleset.errors import ApiError, ForbiddenError, RateLimitedError
from gha_scalesets.simulator.limits import pat_credential
from gha_scalesets.simulator.testing import SimulatorServer
from tests.support.github import create_scale_set, jobs_done
from tests.support.inprocess import InProcessRuntime
from tests.support.listener import listener_settings, running_listener
from tests.support.observe import exposition_sum
from tests.support.waits import wait_for

PATS = ("ghp_first_listener_pat", "ghp_second_listener_pat")
BASE = {"github_config_url": "https://github.com/acme", "scale_sets": [{"name": "x"}]}


def test_one_credential_or_several() -> None:
    single = ListenerSettings(**BASE, credentials={"token": "t"})
    assert [c.token is not None for c in single.credentials] == [True]
    several = ListenerSettings(
        **BASE, credentials=[{"token": "t", "name": "first"}, {"token_file": "/run/t"}]
    )
    assert [c.name for c in several.credentials] == ["first", None]
    with pytest.raises(ValidationError, match="credential names must be unique: twice"):
        ListenerSettings(**BASE, credentials=[{"token": "a", "name": "twice"}] * 2)
    with pytest.raises(ValidationError, match="at least 1"):
        ListenerSettings(**BASE, credentials=[])
    with pytest.raises(ValidationError, match="ceilings"):
        ListenerSettings(**BASE, credentials={"token": "t"}, pacing={"ceilings": {"jit": 0}})


@pytest.mark.parametrize(
    ("error", "waited_out"),
    [
        (RateLimitedError(403, "You have exceeded a secondary rate limit"), True),
        (RateLimitedError(403, "API rate limit exceeded", retry_after=3000), True),
        (RateLimitedError(429, "Too many requests"), True),
        (ForbiddenError(403, "Resource not accessible by integration"), False),
    ],
)
def test_a_rate_limit_is_waited_out_not_fatal(error: ApiError, waited_out: bool) -> None:
    assert is_transient(error) is waited_out


async def test_a_secret_may_hold_several_credentials(
    boto_client, aws: str, sim_app_credentials: tuple[str, int, str]
) -> None:
    client_id, installation, pem = sim_app_credentials
    value = {
        "credentials": [
            {"github_token": PATS[0], "name": "bot"},
            {"github_app": {"client_id": client_id, "installation_id": installation,
                            "private_key": pem}},
        ]
    }  # fmt: skip
    secrets = boto_client("secretsmanager")
    arn = secrets.create_secret(Name="gha/several", SecretString=json.dumps(value))["ARN"]
    bad = secrets.create_secret(
        Name="gha/several-bad", SecretString=json.dumps({"credentials": [{"github_token": 1}]})
    )["ARN"]
    endpoint = AwsConfig(region="us-east-1", endpoint_url=aws)
    sources = [CredentialsConfig(secret_arn=arn), CredentialsConfig(token="t2", name="inline")]
    loaded = await load_credentials(sources, endpoint)
    assert [type(c) for c in loaded] == [PatCredentials, AppCredentials, PatCredentials]
    assert [c.label for c in loaded] == ["bot", f"app:{client_id}", "inline"]
    with pytest.raises(CredentialsLoadError, match="credentials"):
        await load_credentials([CredentialsConfig(secret_arn=bad)], endpoint)


async def test_two_credentials_share_a_burst_within_their_limits(
    sim_factory: Callable[..., SimulatorServer], state_dir: Path
) -> None:
    sim = sim_factory(pats=[*PATS, "ghp_simulator_test_token"])
    per_second = 6  # JIT configs per credential and (one-second) window
    rule = {"points_per_window": 5 * per_second, "window_seconds": 1.0, "block_seconds": 1}
    sim.set_limits(classes={"jit": rule})
    await create_scale_set(sim, "shared")
    settings = listener_settings(
        sim,
        state_dir,
        "shared",
        max_runners=30,
        credentials=[{"token": PATS[0], "name": "first"}, {"token": PATS[1], "name": "second"}],
        pacing={"ceilings": {"jit": per_second}, "window_seconds": 1.0},
    )
    async with running_listener(settings, runtime=InProcessRuntime()) as listener:
        await wait_for(lambda: all(listener.ready().values()), 10, "the session")
        sim.queue_jobs(["shared"], count=30, duration_seconds=0.1)
        await wait_for(jobs_done(sim, 30), 60, "30 completed jobs")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{listener.metrics_port}") as http:
            scraped = (await http.get("/metrics")).text
    limits = sim.limit_stats()
    for pat in PATS:  # both did their share, and GitHub refused neither
        jit = limits[pat_credential(pat)]["jit"]
        assert jit["refused"] == 0 and jit["requests"] >= 10
    for name in ("first", "second"):
        assert exposition_sum(scraped, "gha_listener_credential_usable", credential=name) == 1
        assert exposition_sum(scraped, "gha_listener_credential_budget_ratio", credential=name) == 1
        refused = exposition_sum(scraped, "gha_listener_rate_limit_refusals_total", credential=name)
        assert refused == 0
    assert 'gha_listener_credential_window_remaining{credential="first",route_class="jit"}' in (
        scraped
    )
