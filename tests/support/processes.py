"""Local servers and child processes: free ports, stopping a child, the simulator in its own
process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

import httpx

from gha_scalesets.simulator.testing import SimulatorServer

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_START_TIMEOUT = 30.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for servers that must be told their port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_process(process: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if ``process`` is still running after ``grace`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class SimulatorProcess(SimulatorServer):
    """The simulator in a child process on ``127.0.0.1:<free port>`` (same control helpers),
    trusting ``pat`` and, with ``app``, a GitHub App ``(client id, installation id, PEM)``."""

    def __init__(
        self,
        pat: str,
        *,
        long_poll_seconds: float = 50.0,
        seed: int = 1,
        app: tuple[str, int, str] | None = None,
        extra_args: Iterable[str] = (),
    ) -> None:
        super().__init__(pats=[pat], long_poll_seconds=long_poll_seconds, seed=seed)
        self._pat = pat
        self._app = app
        self._extra = list(extra_args)
        self._process: subprocess.Popen[str] | None = None
        self._key_dir: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> Self:
        args = [
            sys.executable,
            "-m",
            "gha_scalesets.simulator",
            "--port=0",
            f"--pat={self._pat}",
            f"--long-poll-seconds={self.config.long_poll_seconds}",
            f"--seed={self.config.seed}",
            "--log-level=warning",
            *self._extra,
        ]
        if self._app is not None:
            client_id, installation_id, pem = self._app
            self._key_dir = tempfile.TemporaryDirectory()
            key_file = Path(self._key_dir.name) / "app.pem"
            key_file.write_text(pem)
            key_file.chmod(0o600)
            args.append(f"--app={client_id}:{installation_id}:{key_file}")
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
