"""Helpers for listener tests: scale sets on the simulator, settings, a running listener."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from gha_scalesets.listener.app import Listener
from gha_scalesets.listener.config import ListenerSettings
from gha_scalesets.listener.leadership import LeaseStore
from gha_scalesets.listener.registry.base import Registry
from gha_scalesets.listener.runtimes.base import Runtime
from gha_scalesets.scaleset import Client, PatCredentials, ScaleSet
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT

ORG = "acme"


async def create_scale_set(sim: SimulatorServer, name: str) -> ScaleSet:
    async with Client(sim.config_url(ORG), PatCredentials(SecretStr(SIM_PAT))) as client:
        group = await client.get_runner_group_by_name("Default")
        return await client.create_scale_set(name=name, runner_group_id=group.id)


def listener_settings(
    sim: SimulatorServer, state_dir: Path, name: str, max_runners: int, **overrides: Any
) -> ListenerSettings:
    """Settings for a test listener: short timers, any free metrics port, local state in tmp."""
    base: dict[str, Any] = {
        "github_config_url": sim.config_url(ORG),
        "credentials": {"token": SIM_PAT},
        "scale_sets": [
            {"name": name, "max_runners": max_runners, "min_runners": overrides.pop("min", 0)}
        ],
        "metrics_port": 0,
        "metrics_host": "127.0.0.1",
        "owner_name": "test-listener",
        "local": {"state_dir": str(state_dir), "stop_grace_seconds": 2},
        "scale_down_grace_seconds": 0,
        "max_backoff_seconds": 0.5,
    }
    return ListenerSettings(**{**base, **overrides})


@contextlib.asynccontextmanager
async def running_listener(
    settings: ListenerSettings,
    *,
    registry: Registry | None = None,
    runtime: Runtime | None = None,
    leases: LeaseStore | None = None,
) -> AsyncIterator[Listener]:
    listener = Listener(settings, registry=registry, runtime=runtime, leases=leases)
    stop = asyncio.Event()
    await listener.start()
    task = asyncio.create_task(listener.run_until(stop))
    try:
        yield listener
    finally:
        stop.set()
        try:
            await task
        finally:
            await listener.stop()


async def wait_for(condition: Callable[[], Any | Awaitable[Any]], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


def jobs_done(sim: SimulatorServer, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        stats = await asyncio.to_thread(sim.stats)
        return stats["jobs"]["completed"] >= count

    return check


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "runners"
