"""Corporate networks: a real forward proxy, a private CA, NO_PROXY and the User-Agent.

The simulator serves HTTPS with a certificate of a CA made for the test; ``pproxy`` runs as a
separate process and logs every tunnel it opens. The simulator counts the TCP connections its
GitHub routes were called on: when that count equals the proxy's tunnels to it, no request
reached it directly.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from gha_scalesets.scaleset import Client, TransportError
from gha_scalesets.scaleset.network import NetworkSettings, redact_proxy
from gha_scalesets.scaleset.sharding import ShardedTransport
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.network import GHES_HOST, PROXY_PASSWORD, ForwardProxy, PrivateCa
from tests.support.github import ClientFactory

pytestmark = pytest.mark.usefixtures("no_ambient_proxy")


@pytest.fixture
def corp_client(
    tls_sim: SimulatorServer, private_ca: PrivateCa, make_client: ClientFactory
) -> ClientFactory:
    """Clients of the HTTPS simulator that trust its private CA."""

    def make(**options: Any) -> Client:
        return make_client(server=tls_sim, ca_bundle=private_ca.ca_pem, **options)

    return make


async def _some_calls(client: Client) -> None:
    created = await client.create_scale_set(name="corp", runner_group_id=1)
    await client.generate_jit_configs(created.id, [f"corp-{i}" for i in range(20)])
    await client.get_scale_set(created.id)


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
async def test_the_environment_proxy_carries_every_request(
    variable: str,
    monkeypatch: pytest.MonkeyPatch,
    tls_sim: SimulatorServer,
    forward_proxy: ForwardProxy,
    corp_client: ClientFactory,
) -> None:
    monkeypatch.setenv(variable, forward_proxy.url)
    await _some_calls(corp_client())
    assert tls_sim.stats()["connections"] == forward_proxy.tunnels_to(tls_sim) > 0
    assert sum(tls_sim.stats()["requests"].values()) >= 24


async def test_no_proxy_hosts_are_reached_directly(
    monkeypatch: pytest.MonkeyPatch,
    tls_sim: SimulatorServer,
    forward_proxy: ForwardProxy,
    corp_client: ClientFactory,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", forward_proxy.url)
    monkeypatch.setenv("NO_PROXY", f"example.internal,{GHES_HOST}")
    await _some_calls(corp_client())
    assert tls_sim.stats()["connections"] > 0
    assert forward_proxy.connections() == 0


async def test_an_explicit_proxy_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    tls_sim: SimulatorServer,
    forward_proxy: ForwardProxy,
    corp_client: ClientFactory,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    await _some_calls(corp_client(proxy=forward_proxy.url))
    assert tls_sim.stats()["connections"] == forward_proxy.tunnels_to(tls_sim) > 0
    # an explicit no_proxy overrides NO_PROXY too
    direct = corp_client(proxy=forward_proxy.url, no_proxy="*")
    before = forward_proxy.connections()
    await direct.get_runner_group_by_name("Default")
    assert forward_proxy.connections() == before


async def test_a_private_ca_server_is_refused_without_ca_bundle(
    tls_sim: SimulatorServer, private_ca: PrivateCa, make_client: ClientFactory
) -> None:
    with pytest.raises(TransportError) as failure:
        await make_client(server=tls_sim).get_runner_group_by_name("Default")
    message = str(failure.value)
    assert "after 1 attempt(s)" in message  # a trust error is final: no retry storm
    assert "CERTIFICATE_VERIFY_FAILED" in message and "ca_bundle" in message
    assert tls_sim.stats()["requests"] == {}


async def test_ca_bundle_as_a_file_keeps_the_tuned_pool(
    tls_sim: SimulatorServer, private_ca: PrivateCa, make_client: ClientFactory
) -> None:
    client = make_client(server=tls_sim, ca_bundle=str(private_ca.ca_file))
    group = await client.get_runner_group_by_name("Default")
    assert group.id == 1
    transport = client._http._transport  # type: ignore[union-attr]
    assert isinstance(transport, ShardedTransport) and len(transport.shards()) > 1


def test_bad_network_settings_fail_at_construction_without_the_password(
    make_client: ClientFactory, tmp_path: object
) -> None:
    with pytest.raises(ValueError, match="only http:// and https://") as bad_scheme:
        make_client(proxy=f"socks5://user:{PROXY_PASSWORD}@127.0.0.1:1080")
    assert PROXY_PASSWORD not in str(bad_scheme.value)
    with pytest.raises(ValueError, match="cannot read"):
        make_client(ca_bundle="/nonexistent/ca.pem")
    with pytest.raises(ValueError, match="not a valid PEM"):
        make_client(ca_bundle="-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----")
    settings = NetworkSettings(proxy=f"http://user:{PROXY_PASSWORD}@proxy:3128")
    assert PROXY_PASSWORD not in repr(settings)
    assert redact_proxy(settings.proxy or "") == "http://user:***@proxy:3128"


async def test_proxy_credentials_stay_out_of_logs(
    caplog: pytest.LogCaptureFixture,
    tls_sim: SimulatorServer,
    forward_proxy: ForwardProxy,
    corp_client: ClientFactory,
) -> None:
    caplog.set_level(logging.DEBUG)
    tls_sim.set_faults(
        error_rate=1.0, error_status=503, routes=["GET /_apis/runtime/runnergroups/"]
    )
    client = corp_client(proxy=forward_proxy.url)
    with pytest.raises(Exception, match="503"):
        await client.get_runner_group_by_name("Default")
    assert "retrying" in caplog.text  # the retries were logged, the proxy password was not
    assert PROXY_PASSWORD not in caplog.text


async def test_the_user_agent_names_product_version_subsystem_and_scale_set(
    sim: SimulatorServer, make_client: ClientFactory
) -> None:
    client = make_client(subsystem="listener")
    created = await client.create_scale_set(name="ua", runner_group_id=1)
    client.identify(created.id)
    await client.get_scale_set(created.id)
    agents = [json.loads(ua) for ua in sim.stats()["user_agents"]]
    assert {a["scale_set_id"] for a in agents} == {0, created.id}  # updated in place
    for agent in agents:
        assert agent["system"] == "gha-scalesets"
        assert agent["subsystem"] == "listener" and agent["kind"] == "scaleset"
        assert agent["version"] and agent["version"] != "0.0.0"
    client.identify(created.id, created.id + 1)
    assert json.loads(str(client.user_agent))["scale_set_ids"] == [created.id, created.id + 1]
