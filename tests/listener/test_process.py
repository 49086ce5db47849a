"""``python -m gha_scalesets.listener run`` as a real process: SIGTERM, and kill -9 with a DynamoDB
registry.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from pydantic import SecretStr

from gha_scalesets.listener.config import AwsConfig, DynamoDBRegistryConfig
from gha_scalesets.listener.registry.dynamodb import (
    DynamoDBRegistry,
    create_table,
    make_dynamodb_client,
)
from gha_scalesets.scaleset import Client, PatCredentials
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.secret_scan import declare_secret_input
from tests.fixtures.sim import SIM_PAT
from tests.support.aws import REGION as AWS_REGION
from tests.support.github import ORG, create_scale_set, jobs_done
from tests.support.listener import ListenerProcess, write_config
from tests.support.observe import FleetPeak
from tests.support.waits import wait_for


async def test_sigterm_deletes_the_session_and_stops_quickly(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    scale_set = await create_scale_set(sim, "graceful")
    listener = ListenerProcess(write_config(tmp_path / "listener.yaml", sim, "graceful", 3))
    try:
        await wait_for(lambda: listener.logged("session opened"), 20, "the session")
        sim.queue_jobs(["graceful"], count=3, duration_seconds=0.1)
        await wait_for(jobs_done(sim, 3), 30, "3 jobs")
    finally:
        took = listener.stop(signal.SIGTERM)

    assert listener.proc.returncode == 0
    assert took < 10
    assert listener.logged("session deleted") == 1
    async with Client(sim.config_url(ORG), PatCredentials(SecretStr(SIM_PAT))) as client:
        # No 409: the next listener gets the scale set at once.
        session = await client.create_message_session(scale_set.id, "next-listener")
        await client.delete_message_session(session)
    output = "".join(listener.raw)
    assert SIM_PAT not in output and "eyJraW5k" not in output  # no PAT, no JIT config
    assert list((tmp_path / "runners").glob("*.json")) == []


async def test_kill_9_mid_burst_loses_nothing_with_dynamodb(
    sim_factory: Callable[..., SimulatorServer],
    aws: str,
    tmp_path: Path,
) -> None:
    sim = sim_factory(session_ttl_seconds=6.0)
    scale_set = await create_scale_set(sim, "crashy")
    table = "listener-runners"
    # moto's server is not thread-safe (concurrent transactions can undo each other), which
    # real DynamoDB is: one request at a time keeps the emulator honest.
    registry_config = DynamoDBRegistryConfig(
        table_name=table,
        region=AWS_REGION,
        endpoint_url=aws,
        cache_ttl_seconds=1,
        max_concurrency=1,
    )
    create_table(make_dynamodb_client(registry_config, AwsConfig()), table)
    config = write_config(
        tmp_path / "listener.yaml",
        sim,
        "crashy",
        max_runners=6,
        registry=registry_config.model_dump(mode="json"),
        reconcile_interval_seconds=2,
        launch_timeout_seconds=5,
    )
    jobs = 24
    async with FleetPeak(sim) as peak:
        first = ListenerProcess(config)
        try:
            sim.queue_jobs(["crashy"], count=jobs, duration_seconds=1.0)
            await wait_for(jobs_done(sim, 6), 60, "the burst to be under way")
        finally:
            first.stop(signal.SIGKILL)
        second = ListenerProcess(config)
        try:
            await wait_for(jobs_done(sim, jobs), 90, "every job after the restart")
            store = DynamoDBRegistry(table, make_dynamodb_client(registry_config, AwsConfig()))

            async def settled() -> bool:
                runners = (await asyncio.to_thread(sim.stats))["runners"]["registered"]
                return runners == 0 and await store.count(scale_set.id) == 0

            await wait_for(settled, 30, "registry and simulator to agree on zero runners")
            assert await store.list(scale_set.id) == []
        finally:
            second.stop(signal.SIGTERM)

    summary = sim.stats()["jobs"]
    assert summary["completed"] == jobs and summary["canceled"] == 0
    assert len({job["runner_name"] for job in sim.jobs()}) == jobs
    # No runner name was ever reused: the restarted listener continued the sequence.
    before, after = first.runner_sequences(), second.runner_sequences()
    assert before and after and max(before) < min(after)
    assert 0 < peak.peak <= 6


def test_sigterm_while_github_is_unreachable_still_stops(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "listener.yaml"
    declare_secret_input(tmp_path / "token").write_text(SIM_PAT)
    config.write_text(
        yaml.safe_dump(
            {
                "github_config_url": f"http://127.0.0.1:{port}/{ORG}",
                "credentials": {"token_file": str(tmp_path / "token")},
                "scale_sets": [{"name": "nowhere"}],
                "metrics_port": 0,
                "local": {"state_dir": str(tmp_path / "runners")},
            }
        )
    )
    listener = ListenerProcess(config)
    deadline = time.monotonic() + 20
    while not any("retrying" in line for line in listener.raw):
        assert time.monotonic() < deadline, "the listener never tried to reach GitHub"
        time.sleep(0.05)
    assert listener.stop(signal.SIGTERM) < 10
    assert listener.proc.returncode == 0
