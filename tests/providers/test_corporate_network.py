"""The provider behind a corporate proxy, against a GHES-like service with a private CA, driven
through the SDK's dynamic-provider host like every provider test."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.network import PROXY_PASSWORD, ForwardProxy, PrivateCa
from tests.fixtures.sim import SIM_PAT
from tests.support.provider_host import Host, without_provider


def _checked(host: Host, inputs: dict[str, Any]) -> dict[str, Any]:
    checked, failures = host.check("corp", inputs)
    assert failures == {}
    return without_provider(checked)


def test_crud_goes_through_the_proxy_and_trusts_the_ca(
    host: Host, tls_sim: SimulatorServer, private_ca: PrivateCa, forward_proxy: ForwardProxy
) -> None:
    inputs = _checked(
        host,
        {
            "github_config_url": tls_sim.config_url("acme"),
            "name": "corp",
            "github_token": SIM_PAT,
            "proxy": forward_proxy.url,
            "ca_bundle": private_ca.ca_pem,
        },
    )
    id_, outs = host.create("corp", inputs)
    outs = without_provider(outs)
    assert outs["ca_bundle"] == private_ca.ca_pem and outs["proxy"] == forward_proxy.url
    updated = without_provider(host.update("corp", id_, outs, inputs | {"labels": ["fast"]}))
    assert updated["labels"] == ["fast"]
    _, read, _ = host.read("corp", id_, updated)
    host.delete("corp", id_, without_provider(read))

    stats = tls_sim.stats()
    assert stats["requests"]["DELETE /_apis/runtime/runnerscalesets/{id}"] == 1
    tunnels = forward_proxy.tunnels_to(tls_sim)
    assert tunnels > 0 and stats["connections"] == tunnels  # every request through the proxy
    agents = {json.loads(ua)["subsystem"] for ua in stats["user_agents"]}
    assert agents == {"provider"}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"proxy": f"socks5://u:{PROXY_PASSWORD}@proxy:1080"}, "only http:// and https://"),
        ({"proxy": ""}, "non-empty string"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "cannot read"),
    ],
)
def test_bad_network_inputs_fail_check(host: Host, change: dict[str, str], fragment: str) -> None:
    inputs = {"github_config_url": "https://ghes.example/acme", "name": "x", "github_token": "t"}
    _, failures = host.check("corp", inputs | change)
    [(prop, [reason])] = failures.items()
    assert prop == next(iter(change)) and fragment in reason
    assert PROXY_PASSWORD not in reason
