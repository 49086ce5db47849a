"""One shared HTTP pool per event loop, and secrets kept out of logs, reprs and errors."""

from __future__ import annotations

import logging

import pytest

from gha_scalesets.scaleset import Client, PatCredentials, RetryPolicy, ScaleSet
from gha_scalesets.scaleset.auth import TokenCache
from gha_scalesets.scaleset.pool import PoolSettings, open_pools
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT
from tests.support.github import JIT, ClientFactory


async def test_clients_share_one_pool_per_loop_and_release_it(sim: SimulatorServer) -> None:
    url, credentials = sim.config_url("acme"), PatCredentials(SIM_PAT)
    cache = TokenCache()
    first = Client(url, credentials, token_cache=cache)
    second = Client(url, credentials, token_cache=cache)
    h2 = Client(url, credentials, token_cache=cache, pool_settings=PoolSettings(http2=True))
    for client in (first, second, h2):
        assert (await client.get_runner_group_by_name("Default")).id == 1
    assert first._http is second._http and first._http is not None
    assert h2._http is not first._http  # different tuning, different pool
    assert open_pools() == 2
    await first.aclose()
    assert open_pools() == 2 and second._http is not None and not second._http.is_closed
    await second.aclose()
    await h2.aclose()
    assert open_pools() == 0


async def test_secrets_stay_out_of_logs_reprs_and_errors(
    sim: SimulatorServer,
    make_client: ClientFactory,
    scale_set: ScaleSet,
    caplog: pytest.LogCaptureFixture,
    patient_retry: RetryPolicy,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(retry=patient_retry)
    sim.set_faults(error_rate=0.3, error_status=503, routes=[JIT])
    results = await client.generate_jit_configs(scale_set.id, [f"s-{i}" for i in range(8)])
    session = await client.create_message_session(scale_set.id, owner="host-1")
    await client.refresh_message_session(session)
    sim.set_faults(error_rate=1.0, error_status=500, routes=[JIT])
    failed = await client.generate_jit_configs(scale_set.id, ["doomed"])

    chain = client._chains[client.credentials[0]]
    entry = chain.cache.entry(chain.key)
    assert entry.admin is not None and entry.registration is not None
    secrets = [
        SIM_PAT,
        entry.admin.token.secret,
        entry.registration.secret,
        session.message_queue_access_token.get_secret_value(),
        *(r.config for r in results if r.config),
    ]
    assert len(secrets) == 12
    shown = "\n".join(
        [
            caplog.text,
            repr(client),
            repr(session),
            repr(entry.admin),
            repr(results),
            str(failed[0].error),
            repr(failed[0].error),
        ]
    )
    assert "retrying" in caplog.text  # the retries were logged...
    for secret in secrets:
        assert secret not in shown  # ...without any credential
