"""The auth chain and its process-wide, single-flight token cache."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from gha_scalesets.scaleset import (
    AppCredentials,
    Client,
    CredentialsError,
    ForbiddenError,
    PatCredentials,
    UnauthorizedError,
)
from gha_scalesets.scaleset.auth import AuthChain, TokenCache, default_token_cache
from gha_scalesets.scaleset.config_url import parse_config_url
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT
from tests.support.clocks import OffsetClock
from tests.support.github import (
    ACCESS_TOKENS,
    REGISTRATION_TOKEN,
    RUNNER_REGISTRATION,
    ClientFactory,
    requests,
)

App = tuple[str, int, str]


async def test_cold_cache_runs_the_chain_once_for_50_concurrent_calls(
    sim: SimulatorServer, client: Client
) -> None:
    groups = await asyncio.gather(*(client.get_runner_group_by_name("Default") for _ in range(50)))
    assert {g.id for g in groups} == {1}
    assert requests(sim, REGISTRATION_TOKEN) == 1
    assert requests(sim, RUNNER_REGISTRATION) == 1
    assert client.auth_chain_runs == 1


async def test_clients_share_tokens_per_config_url_and_credential(
    sim: SimulatorServer, make_client: ClientFactory
) -> None:
    cache = TokenCache()
    first, second = make_client(token_cache=cache), make_client(token_cache=cache)
    other_scope = make_client(token_cache=cache, path="acme/app")
    await first.get_runner_group_by_name("Default")
    await second.get_runner_group_by_name("Default")
    assert requests(sim, RUNNER_REGISTRATION) == 1
    assert second.auth_chain_runs == first.auth_chain_runs == 1
    await other_scope.get_runner_group_by_name("Default")
    assert requests(sim, RUNNER_REGISTRATION) == 2
    assert (
        requests(sim, "POST /api/v3/repos/{owner}/{repo}/actions/runners/registration-token") == 1
    )


async def test_default_cache_is_process_wide(sim: SimulatorServer) -> None:
    url = sim.config_url("acme/default-cache")
    try:
        async with (
            Client(url, PatCredentials(SIM_PAT)) as a,
            Client(url, PatCredentials(SIM_PAT)) as b,
        ):
            await asyncio.gather(
                a.get_runner_group_by_name("Default"), b.get_runner_group_by_name("Default")
            )
            assert a.auth_chain_runs == b.auth_chain_runs == 1
        assert requests(sim, RUNNER_REGISTRATION) == 1
    finally:
        default_token_cache().clear()


async def test_tokens_are_refreshed_before_they_expire(
    sim: SimulatorServer, make_client: ClientFactory
) -> None:
    clock = OffsetClock()
    statuses: list[int | None] = []
    client = make_client(
        token_cache=TokenCache(clock=clock),
        observer=lambda m, r, status, s: statuses.append(status),
    )
    await client.get_runner_group_by_name("Default")
    clock.offset = 3600 - 30  # within a minute of the admin and registration tokens' expiry
    await client.get_runner_group_by_name("Default")
    assert client.auth_chain_runs == 2
    assert 401 not in statuses  # renewed proactively, no request was refused
    assert requests(sim, REGISTRATION_TOKEN) == 2


async def test_tokens_revoked_mid_run_are_renewed_transparently(
    sim: SimulatorServer, client: Client
) -> None:
    await client.get_runner_group_by_name("Default")
    sim.reset()  # every token the simulator issued is now unknown to it
    group = await client.get_runner_group_by_name("Default")
    assert group.id == 1
    assert client.auth_chain_runs == 2
    # The cached registration token was refused once, then a fresh one was minted.
    assert requests(sim, RUNNER_REGISTRATION) == 2
    assert requests(sim, REGISTRATION_TOKEN) == 1


async def test_admin_token_expiry_mid_run(
    sim_factory: Callable[..., SimulatorServer], make_client: ClientFactory
) -> None:
    # Issued with exp = int(now + ttl): a 2 s TTL leaves each token at least 1 s of life.
    server = sim_factory(admin_token_ttl_seconds=2)
    client = make_client(server=server)
    scale_set = await client.create_scale_set(name="expiring", runner_group_id=1)
    deadline = time.monotonic() + 10
    calls = 0
    while client.auth_chain_runs < 3:  # keep working across two admin-token lifetimes
        assert time.monotonic() < deadline
        await client.get_scale_set(scale_set.id)  # never fails
        calls += 1
    assert calls > 3
    # Only runner-registration repeats: the registration token outlives the admin token.
    assert requests(server, REGISTRATION_TOKEN) == 1
    assert requests(server, RUNNER_REGISTRATION) == client.auth_chain_runs


async def test_app_credentials_chain_and_partial_refresh(
    sim_factory: Callable[..., SimulatorServer],
    make_client: ClientFactory,
    sim_app_credentials: App,
) -> None:
    server = sim_factory(installation_token_ttl_seconds=7200, registration_token_ttl_seconds=7200)
    clock = OffsetClock()
    client = make_client(
        server=server,
        credentials=AppCredentials(*sim_app_credentials),
        token_cache=TokenCache(clock=clock),
    )
    routes = (ACCESS_TOKENS, REGISTRATION_TOKEN, RUNNER_REGISTRATION)
    await client.get_runner_group_by_name("Default")
    assert [requests(server, k) for k in routes] == [1, 1, 1]
    clock.offset = 3600 - 30  # the 1 h admin token is due; the 2 h tokens are not
    await client.get_runner_group_by_name("Default")
    # Upstream re-runs JWT -> installation -> registration -> admin; we only redo the last hop.
    assert [requests(server, k) for k in routes] == [1, 1, 2]
    assert client.auth_chain_runs == 2


async def test_bad_pat_is_unauthorized_without_retries(
    sim: SimulatorServer, make_client: ClientFactory
) -> None:
    client = make_client(credentials=PatCredentials("ghp_wrong_token"))
    with pytest.raises(UnauthorizedError) as info:
        await client.get_runner_group_by_name("Default")
    assert info.value.status == 401 and info.value.attempts == 1
    assert "Bad credentials" in str(info.value) and "ghp_wrong_token" not in str(info.value)
    assert requests(sim, REGISTRATION_TOKEN) == 1


async def test_a_failing_chain_is_shared_by_concurrent_callers(
    sim: SimulatorServer, make_client: ClientFactory
) -> None:
    client = make_client(credentials=PatCredentials("ghp_wrong_token"))
    results = await client.generate_jit_configs(1, [f"r-{i}" for i in range(40)], concurrency=40)
    assert all(isinstance(r.error, UnauthorizedError) for r in results)
    assert requests(sim, REGISTRATION_TOKEN) == 1  # tried once, not once per runner


async def test_unknown_app_key_is_unauthorized(
    make_client: ClientFactory, sim_app_credentials: App, rsa_pem: str
) -> None:
    client_id, installation_id, _ = sim_app_credentials
    client = make_client(credentials=AppCredentials(client_id, installation_id, rsa_pem))
    with pytest.raises(UnauthorizedError, match="signature"):
        await client.get_runner_group_by_name("Default")


async def test_app_on_an_enterprise_is_refused(
    sim: SimulatorServer, client: Client, sim_app_credentials: App
) -> None:
    app = AppCredentials(*sim_app_credentials)
    with pytest.raises(CredentialsError, match="manage_runners:enterprise"):
        Client(sim.config_url("enterprises/big"), app)
    # What the service says if asked anyway (the client refuses before that).
    chain = AuthChain(
        parse_config_url(sim.config_url("enterprises/big")), app, TokenCache(), client._send, "ua"
    )
    with pytest.raises(ForbiddenError, match="Resource not accessible by integration") as info:
        await chain.admin()
    assert info.value.status == 403


def test_malformed_credentials_fail_early_without_leaking(rsa_pem: str) -> None:
    broken = rsa_pem.replace("A", "B", 40)
    with pytest.raises(CredentialsError) as info:
        AppCredentials("Iv1.x", 1, broken)
    assert "PRIVATE KEY" not in str(info.value) and info.value.__cause__ is None
    with pytest.raises(CredentialsError, match="installation ID"):
        AppCredentials("Iv1.x", "abc", rsa_pem)  # type: ignore[arg-type]
    with pytest.raises(CredentialsError, match="empty"):
        PatCredentials("  ")
