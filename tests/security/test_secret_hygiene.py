"""Secret hygiene: canary tokens, keys and JIT configs never show up where people look.

Each flow runs with canaries and scans what an operator or an attacker with read access sees:
log records (every logger at DEBUG), the listener's JSON log stream and metrics, exception text,
reprs, provider outputs that are not marked secret, and files written.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import SecretStr

from benchmarks.chaos_scenarios import REDUCED, run_scenario, scenarios
from gha_scalesets.providers import props as p
from gha_scalesets.scaleset import AppCredentials, Client, PatCredentials
from gha_scalesets.scaleset.errors import ScaleSetError
from gha_scalesets.simulator.testing import SimulatorServer
from tests.support import aws as aws_support
from tests.support.canaries import CANARY_APP_ID, CANARY_INSTALLATION, CANARY_PAT, Canaries
from tests.support.observe import captured_logs
from tests.support.provider_host import Host, without_provider


async def _exercise(client: Client, jit_configs: list[str], errors: list[str]) -> None:
    group = await client.get_runner_group_by_name("Default")
    scale_set = await client.create_scale_set(name="canary", runner_group_id=group.id)
    results = await client.generate_jit_configs(scale_set.id, ["canary-1", "canary-2"])
    jit_configs += [r.config for r in results if r.config]
    errors += [repr(r) for r in results]
    with pytest.raises(ScaleSetError) as failed:
        await client.get_scale_set(999_999)
    errors.append(str(failed.value))
    await client.delete_scale_set(scale_set.id)


async def test_auth_chain_with_app_and_pat_leaks_nothing(
    canary_sim: SimulatorServer,
    canary_key: str,
    canaries: Canaries,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    canary_sim.reset()
    jit_configs: list[str] = []
    texts: list[str] = []
    pat = PatCredentials(SecretStr(CANARY_PAT))
    app = AppCredentials(CANARY_APP_ID, CANARY_INSTALLATION, SecretStr(canary_key))
    for credentials in (pat, app):
        async with Client(canary_sim.config_url("acme"), credentials) as client:
            await _exercise(client, jit_configs, texts)
            texts += [repr(client), repr(credentials)]
    wrong = AppCredentials(CANARY_APP_ID, CANARY_INSTALLATION + 1, SecretStr(canary_key))
    async with Client(canary_sim.config_url("acme"), wrong) as client:
        with pytest.raises(ScaleSetError) as rejected:
            await client.get_runner_group_by_name("Default")
    texts.append(str(rejected.value))

    assert len(jit_configs) == 4  # the canaries were really issued
    canaries.add_jit_configs(jit_configs)
    sources = {"logs": caplog.text, "errors": "\n".join(texts)}
    assert canaries.leaks(sources) == []


async def test_listener_burst_leaks_no_token_or_jit_config(aws: str) -> None:
    scenario = next(s for s in scenarios() if s.name == "5xx-burst")
    result = await run_scenario(scenario, REDUCED, moto_url=aws)
    assert result.completed == REDUCED.jobs  # JIT configs were issued and used
    assert result.extra["canaries"] > REDUCED.jobs
    assert result.leaks == []


def test_debug_logs_of_aws_calls_leak_no_jit_config(aws: str, canaries: Canaries) -> None:
    """``log_level: debug`` turns on botocore's request logging, which prints parameters."""
    jit_config = "eyJjYW5hcnkiOiAiaml0In0" + "J" * 60  # shaped like an encoded JIT config
    canaries.add_jit_configs([jit_config])
    with captured_logs("debug") as stream:
        aws_support.client("ssm", aws).put_parameter(
            Name="/chaos/jit/1/canary", Value=jit_config, Type="SecureString"
        )
    assert canaries.leaks({"listener logs": stream.getvalue()}) == []


def _provider_inputs(sim: SimulatorServer) -> dict[str, Any]:
    return {
        p.GITHUB_CONFIG_URL: sim.config_url("acme"),
        p.NAME: "canary-provider",
        p.RUNNER_GROUP: "Default",
        p.LABELS: ["canary"],
        p.DISABLE_UPDATE: True,
        p.GITHUB_TOKEN: CANARY_PAT,
    }


def test_provider_outputs_errors_and_state_leak_nothing(
    canary_sim: SimulatorServer, canaries: Canaries
) -> None:
    canary_sim.reset()
    host = Host()
    try:
        inputs = _provider_inputs(canary_sim)
        checked, failures = host.check("canary", inputs)
        assert failures == {}
        id_, outs = host.create("canary", checked)
        _, read, _ = host.read("canary", id_, outs, inputs)
        public = {
            k: v
            for k, v in {**without_provider(outs), **without_provider(read)}.items()
            if k not in p.SECRET_KEYS  # marked secret by additional_secret_outputs
        }
        with pytest.raises(Exception) as rejected:
            host.create("denied", {**inputs, p.GITHUB_TOKEN: CANARY_PAT + "x", p.NAME: "other"})
    finally:
        host.close()
    sources = {
        "outputs not marked secret": repr(public),
        "provider error": str(rejected.value),
        "pickled provider": str(host.provider),
    }
    assert canaries.leaks(sources) == []
