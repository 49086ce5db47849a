"""A listener under test: its settings, in this process or as ``python -m gha_scalesets.listener``,
and a way to cut one replica off the shared lease store."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gha_scalesets.listener.app import Listener
from gha_scalesets.listener.config import ListenerSettings
from gha_scalesets.listener.leadership import Lease, LeaseStore, Member, Terms
from gha_scalesets.listener.registry.base import Registry
from gha_scalesets.listener.runtimes.base import Runtime
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.secret_scan import declare_secret_input
from tests.fixtures.sim import SIM_PAT
from tests.support.github import ORG
from tests.support.observe import metric_total

# Short leases (1.5 s, renewed every 0.25 s): the protocol is the same at the default 10 s / 2 s.
LEADERSHIP = {"lease_duration_seconds": 1.5, "renew_interval_seconds": 0.25}


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
    """A started listener serving until the block ends, then stopped."""
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


def session_events(listener: Listener, event: str) -> float:
    """How often ``listener`` counted the session event ``event``."""
    return metric_total(listener.metrics.registry, "gha_listener_session_events_total", event=event)


class Partition:
    """One replica's way to the shared lease store; ``cut`` makes every call fail."""

    name = "memory"

    def __init__(self, shared: LeaseStore) -> None:
        self._shared = shared
        self.cut = False

    def _check(self) -> None:
        if self.cut:
            raise ConnectionError("lease store unreachable")

    async def read(self, scale_set_id: int) -> Lease | None:
        self._check()
        return await self._shared.read(scale_set_id)

    async def swap(self, scale_set_id: int, expected: Lease | None, new: Terms) -> Lease | None:
        self._check()
        return await self._shared.swap(scale_set_id, expected, new)

    async def read_many(self, scale_set_ids: Sequence[int]) -> dict[int, Lease]:
        self._check()
        return await self._shared.read_many(scale_set_ids)

    async def beat(self, group: str, identity: str, leading: int) -> None:
        self._check()
        await self._shared.beat(group, identity, leading)

    async def members(self, group: str) -> list[Member]:
        self._check()
        return await self._shared.members(group)

    async def remove_member(self, group: str, identity: str) -> None:
        self._check()
        await self._shared.remove_member(group, identity)

    async def close(self) -> None:
        pass


class ListenerProcess:
    """A listener subprocess whose JSON log lines are collected as they arrive."""

    def __init__(self, config: Path | None = None, env: Mapping[str, str] | None = None) -> None:
        """Run with settings from ``config`` and/or ``LISTENER_*`` variables in ``env``."""
        self.logs: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gha_scalesets.listener",
                "run",
                *(["--config", str(config)] if config else []),
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line)
            if line.startswith("{"):
                self.logs.append(json.loads(line))

    def logged(self, event: str) -> int:
        return sum(1 for entry in self.logs if entry.get("event") == event)

    def runner_sequences(self) -> list[int]:
        """The sequence numbers of the runners this process started."""
        return [
            int(entry["runner"].rpartition("-")[2])
            for entry in self.logs
            if entry.get("event") == "runner process started"
        ]

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10) -> float:
        """Send ``signum``; returns the seconds until the process exited."""
        started = time.monotonic()
        self.proc.send_signal(signum)
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return time.monotonic() - started


def write_config(
    path: Path, sim: SimulatorServer, name: str, max_runners: int, **extra: Any
) -> Path:
    token = declare_secret_input(path.parent / "token")
    token.write_text(SIM_PAT)
    settings = {
        "github_config_url": sim.config_url(ORG),
        "credentials": {"token_file": str(token)},
        "scale_sets": [{"name": name, "max_runners": max_runners}],
        "metrics_port": 0,
        "metrics_host": "127.0.0.1",
        "local": {"state_dir": str(path.parent / "runners"), "stop_grace_seconds": 2},
        "scale_down_grace_seconds": 0,
        "max_backoff_seconds": 0.5,
        **extra,
    }
    path.write_text(yaml.safe_dump(settings))  # names the token file, holds no secret
    return path
