"""A burst behind a corporate proxy, against a GHES-like service with a private CA.

The simulator serves HTTPS with a certificate from a CA made for the test, reachable only through
an authenticating ``pproxy`` process as far as the listener and its runner processes know. The
simulator counts the TCP connections its GitHub and runner routes were called on; equal to the
proxy's tunnel count, it shows that no request went around the proxy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from gha_scalesets.scaleset import Client, PatCredentials
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.network import PROXY_PASSWORD, ForwardProxy, PrivateCa
from tests.fixtures.sim import SIM_PAT
from tests.support.github import ORG, jobs_done
from tests.support.listener import listener_settings, running_listener
from tests.support.waits import wait_for

JOBS = 12
pytestmark = pytest.mark.usefixtures("no_ambient_proxy")


async def test_a_burst_runs_through_the_proxy_with_a_private_ca(
    tls_sim: SimulatorServer,
    private_ca: PrivateCa,
    forward_proxy: ForwardProxy,
    state_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with Client(
        tls_sim.config_url(ORG), PatCredentials(SecretStr(SIM_PAT)), ca_bundle=private_ca.ca_pem
    ) as admin:
        scale_set = await admin.create_scale_set(name="corp-burst", runner_group_id=1)
    baseline = tls_sim.stats()["connections"]  # the set-up above went direct
    settings = listener_settings(
        tls_sim,
        state_dir,
        "corp-burst",
        max_runners=6,
        proxy=SecretStr(forward_proxy.url),
        ca_bundle=str(private_ca.ca_file),
    )
    async with running_listener(settings) as listener:
        tls_sim.queue_jobs(["corp-burst"], count=JOBS, duration_seconds=0.1)
        await wait_for(jobs_done(tls_sim, JOBS), 90, f"{JOBS} jobs on runner processes")

        async def released() -> bool:
            return await listener.registry.count(scale_set.id) == 0

        await wait_for(released, 20, "the runners to be released")
    stats = tls_sim.stats()
    tunnels = forward_proxy.tunnels_to(tls_sim)
    github_requests = sum(stats["requests"].values()) + sum(stats["runner_requests"].values())
    with capsys.disabled():
        print(
            f"\n{JOBS}-job burst via proxy + private CA: {github_requests} requests over "
            f"{tunnels} proxy tunnels"
        )
    assert stats["jobs"]["completed"] == JOBS
    assert stats["runner_requests"]  # the runner processes reached the service too
    assert tunnels > 0 and stats["connections"] - baseline == tunnels  # none went around it
    agents = [json.loads(ua) for ua in stats["user_agents"]]
    subsystems = {(a["subsystem"], a["scale_set_id"]) for a in agents}
    assert ("listener", scale_set.id) in subsystems
    assert ("runner-emulator", scale_set.id) in subsystems
    logs = "".join(p.read_text() for p in state_dir.glob("*.log"))
    assert PROXY_PASSWORD not in logs
