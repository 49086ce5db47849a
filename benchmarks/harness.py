"""Shared plumbing of the scenarios: the simulator in its own process, request counting, stats.

The simulator runs as ``python -m gha_scalesets.simulator`` in a child process so that it and the
code under test each get a CPU core (in one process they would share the GIL and every number would
measure Python's scheduler). It is driven through :class:`~simulator.testing.SimulatorServer`'s
control helpers, which only talk HTTP to ``/_sim/``.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Self

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gha_scalesets.scaleset import Client, PatCredentials
from gha_scalesets.scaleset.auth import TokenCache
from gha_scalesets.simulator.testing import SimulatorServer

PAT = "ghp_benchmark_token"
ORG = "acme"
APP_CLIENT_ID = "Iv1.benchmarkapp"
APP_INSTALLATION_ID = 4711
PROJECT_ROOT = Path(__file__).resolve().parents[1]
_START_TIMEOUT = 30.0
_WAIT_TIMEOUT = 600.0
_WAIT_POLL_SECONDS = 0.005


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for servers that must be told their port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def app_private_key() -> str:
    """A fresh GitHub App key (PEM): both the simulator and the client get it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def stop_process(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if ``process`` is still running after ``grace`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class SimulatorProcess(SimulatorServer):
    """The simulator in a child process on ``127.0.0.1:<free port>`` (same control helpers)."""

    def __init__(
        self,
        *,
        long_poll_seconds: float = 50.0,
        seed: int = 1,
        app_pem: str | None = None,
        extra_args: Iterable[str] = (),
    ) -> None:
        super().__init__(pats=[PAT], long_poll_seconds=long_poll_seconds, seed=seed)
        self._app_pem = app_pem
        self._extra = list(extra_args)
        self._process: subprocess.Popen[str] | None = None
        self._key_dir: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> Self:
        args = [
            sys.executable,
            "-m",
            "gha_scalesets.simulator",
            "--port=0",
            f"--pat={PAT}",
            f"--long-poll-seconds={self.config.long_poll_seconds}",
            f"--seed={self.config.seed}",
            "--log-level=warning",
            *self._extra,
        ]
        if self._app_pem is not None:
            self._key_dir = tempfile.TemporaryDirectory()
            key_file = Path(self._key_dir.name) / "app.pem"
            key_file.write_text(self._app_pem)
            key_file.chmod(0o600)
            args.append(f"--app={APP_CLIENT_ID}:{APP_INSTALLATION_ID}:{key_file}")
        self._process = subprocess.Popen(
            args,
            cwd=PROJECT_ROOT,
            env=os.environ | {"PYTHONPATH": str(PROJECT_ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._process.stdout is not None
        banner = self._process.stdout.readline()
        marker = "http://"
        if marker not in banner:
            self.close()
            raise RuntimeError(f"the simulator did not start: {banner.strip()!r}")
        self.url = banner[banner.index(marker) :].split()[0]
        self._control = httpx.Client(base_url=self.url, timeout=30.0)
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                self.stats()
                return self
            except (httpx.HTTPError, RuntimeError):
                if time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"the simulator on {self.url} does not answer") from None
                time.sleep(0.05)

    def close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._process is not None:
            stop_process(self._process)
            self._process = None
        if self._key_dir is not None:
            self._key_dir.cleanup()
            self._key_dir = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid


async def create_scale_set(sim: SimulatorServer, name: str) -> int:
    """A scale set in the Default group of ``ORG`` (created with ``PAT``); its id."""
    async with Client(sim.config_url(ORG), PatCredentials(PAT), token_cache=TokenCache()) as c:
        group = await c.get_runner_group_by_name("Default")
        return (await c.create_scale_set(name=name, runner_group_id=group.id)).id


def requests_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, int]:
    """GitHub-facing requests per route key between two ``/_sim/stats`` snapshots."""
    old, new = before["requests"], after["requests"]
    diff = {route: count - old.get(route, 0) for route, count in new.items()}
    return {route: count for route, count in sorted(diff.items()) if count}


def total(requests: Mapping[str, int], needle: str = "") -> int:
    return sum(n for route, n in requests.items() if needle in route)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: every reported value was observed)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


AUTH_ROUTES = ("access_tokens", "registration-token", "runner-registration")


def auth_requests(requests: Mapping[str, int]) -> int:
    """Requests of the auth chain (installation token, registration token, admin token)."""
    return sum(n for route, n in requests.items() if any(a in route for a in AUTH_ROUTES))


async def wait_until(condition: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Poll ``condition`` (sync or async) until true; fail after the deadline."""
    deadline = time.monotonic() + _WAIT_TIMEOUT
    while True:
        value = condition()
        if not isinstance(value, bool):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(_WAIT_POLL_SECONDS)
