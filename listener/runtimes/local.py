"""Runners as local processes: the simulator's runner emulator or a real ``actions-runner``.

Each runner is a child process in its own process group, handed its JIT config through the
environment (``ACTIONS_RUNNER_INPUT_JITCONFIG``, which both the real runner and the emulator
read), never on the command line where ``ps`` would show it. A small JSON file per runner in
``state_dir`` lets a restarted listener find the processes of a crashed predecessor: it adopts
live ones (polling their pid, a local syscall) and reports dead ones in ``list_runners``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from gha_scalesets.contract.names import JIT_CONFIG_ENV
from gha_scalesets.contract.network import no_proxy_list, proxy_environment, write_ca_files
from gha_scalesets.listener.config import LocalRuntimeConfig
from gha_scalesets.listener.runtimes.base import (
    LaunchResult,
    RunnerPhase,
    RunnerSpec,
    RuntimeEvent,
    RuntimeRunner,
)
from gha_scalesets.scaleset.network import ca_pem

log = structlog.get_logger("listener.runtime.local")

EMULATOR_MODULE = "gha_scalesets.simulator.runner"
SIMULATOR_JIT_KIND = "gha-scalesets-simulator/"
_ADOPTED_POLL_SECONDS = 1.0


@dataclass
class _Runner:
    provider_id: str
    pid: int
    runner_name: str
    scale_set_id: int
    process: asyncio.subprocess.Process | None = None  # None: adopted from a predecessor
    watcher: asyncio.Task[None] | None = None
    terminating: bool = False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # An orphan whose new parent does not reap it lingers as a zombie: it has ended.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS): trust the signal check
    return stat.rpartition(")")[2].split()[0] != "Z"


def _from_simulator(jit_config: str) -> bool:
    """Simulator JIT configs are base64 JSON naming their kind; GitHub's never do."""
    try:
        document = json.loads(base64.b64decode(jit_config, validate=True))
    except (binascii.Error, ValueError):
        return False
    return isinstance(document, dict) and str(document.get("kind", "")).startswith(
        SIMULATOR_JIT_KIND
    )


def _child_env(jit_config: str, network: Mapping[str, str]) -> dict[str, str]:
    # The listener's own settings may carry credentials: runners must not inherit them.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    env.update(network)
    env[JIT_CONFIG_ENV] = jit_config
    return env


class LocalRuntime:
    """The ``local`` runtime (development, demos and end-to-end tests)."""

    name = "local"

    def __init__(
        self,
        config: LocalRuntimeConfig,
        state_dir: Path,
        *,
        proxy: str | None = None,
        no_proxy: str | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        """``proxy``, ``no_proxy`` and ``ca_bundle`` (the listener's network settings) reach
        every runner process as the standard variables; unset, runners inherit the listener's
        environment (``HTTPS_PROXY`` etc. included)."""
        self.api_calls: Counter[str] = Counter()  # no cloud: stays empty
        self._config = config
        self._state_dir = state_dir
        self._state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._network: dict[str, str] = {}
        if proxy:
            self._network |= proxy_environment(proxy, no_proxy_list(no_proxy))
        if ca_bundle:
            self._network |= write_ca_files(state_dir / "ca", ca_pem(ca_bundle))
        self._runners: dict[str, _Runner] = {}
        self._events: asyncio.Queue[RuntimeEvent | None] = asyncio.Queue()
        self._closed = False

    def _command(self, jit_config: str) -> list[str] | None:
        if _from_simulator(jit_config):
            return [sys.executable, "-m", EMULATOR_MODULE]
        if self._config.runner_dir is not None:
            return [str(self._config.runner_dir / "run.sh")]
        return None

    def _state_file(self, runner_name: str) -> Path:
        return self._state_dir / f"{runner_name}.json"

    def _log_file(self, runner_name: str) -> Path:
        return self._state_dir / f"{runner_name}.log"

    async def launch(self, runners: Sequence[RunnerSpec]) -> list[LaunchResult]:
        return [await self._launch_one(spec) for spec in runners]

    async def _launch_one(self, spec: RunnerSpec) -> LaunchResult:
        if self._closed:
            return LaunchResult(spec.runner_name, error="the local runtime is closed")
        command = self._command(spec.jit_config)
        if command is None:
            return LaunchResult(
                spec.runner_name,
                error="a GitHub JIT config needs an actions-runner: set local.runner_dir to the "
                "directory holding its run.sh",
            )
        try:
            with self._log_file(spec.runner_name).open("wb") as output:
                process = await asyncio.create_subprocess_exec(
                    *command,
                    env=_child_env(spec.jit_config, self._network),
                    cwd=self._config.runner_dir,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=output,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,  # its own process group: a terminal ^C is ours
                )
        except OSError as exc:
            return LaunchResult(
                spec.runner_name, error=f"cannot start the runner process: {exc.strerror}"
            )
        runner = _Runner(
            f"local-{process.pid}", process.pid, spec.runner_name, spec.scale_set_id, process
        )
        self._state_file(spec.runner_name).write_text(
            json.dumps(
                {
                    "provider_id": runner.provider_id,
                    "pid": runner.pid,
                    "runner_name": runner.runner_name,
                    "scale_set_id": runner.scale_set_id,
                    "started_at": time.time(),
                }
            )
        )
        self._track(runner)
        log.info("runner process started", runner=spec.runner_name, pid=process.pid)
        return LaunchResult(spec.runner_name, provider_id=runner.provider_id)

    def _track(self, runner: _Runner) -> None:
        self._runners[runner.provider_id] = runner
        runner.watcher = asyncio.create_task(self._watch(runner), name=f"watch-{runner.pid}")

    async def _watch(self, runner: _Runner) -> None:
        if runner.process is not None:
            code: int | None = await runner.process.wait()
        else:
            while _alive(runner.pid):  # noqa: ASYNC110 - no exit notification for non-children
                await asyncio.sleep(_ADOPTED_POLL_SECONDS)
            code = None  # not our child: the exit status is unknowable
        self._runners.pop(runner.provider_id, None)
        self._state_file(runner.runner_name).unlink(missing_ok=True)
        failed = code not in (0, None) and not runner.terminating
        if not failed:
            self._log_file(runner.runner_name).unlink(missing_ok=True)
        reason = "terminated" if runner.terminating else f"exit code {code}"
        await self._events.put(
            RuntimeEvent(
                runner.provider_id,
                RunnerPhase.FAILED if failed else RunnerPhase.STOPPED,
                runner.runner_name,
                runner.scale_set_id,
                reason,
            )
        )

    def _read_state(self) -> list[_Runner]:
        found = []
        for path in self._state_dir.glob("*.json"):
            try:
                data = json.loads(path.read_text())
                found.append(
                    _Runner(
                        data["provider_id"],
                        int(data["pid"]),
                        data["runner_name"],
                        int(data["scale_set_id"]),
                    )
                )
            except (OSError, ValueError, KeyError):
                continue  # being written or removed right now
        return found

    async def terminate(self, provider_ids: Sequence[str]) -> None:
        unknown = [p for p in provider_ids if p not in self._runners]
        known = {r.provider_id: r for r in self._read_state()} if unknown else {}
        targets = []
        for provider_id in provider_ids:
            runner = self._runners.get(provider_id) or known.get(provider_id)
            if runner is not None:
                runner.terminating = True
                targets.append(runner)
        await asyncio.gather(*(self._stop(r) for r in targets))

    async def _stop(self, runner: _Runner) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(runner.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._config.stop_grace_seconds
        while time.monotonic() < deadline:
            if runner.process is not None and runner.process.returncode is not None:
                break
            if runner.process is None and not _alive(runner.pid):
                break
            await asyncio.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(runner.pid, signal.SIGKILL)
        self._state_file(runner.runner_name).unlink(missing_ok=True)

    async def list_runners(self, scale_set_id: int) -> list[RuntimeRunner]:
        listed = []
        for runner in self._read_state():
            if runner.scale_set_id != scale_set_id:
                continue
            tracked = self._runners.get(runner.provider_id)
            alive = (
                _alive(runner.pid)
                if tracked is None
                else tracked.process is None or (tracked.process.returncode is None)
            )
            if alive and tracked is None:
                self._track(runner)  # a predecessor's runner: watch it from now on
            listed.append(
                RuntimeRunner(
                    runner.runner_name,
                    runner.provider_id,
                    runner.scale_set_id,
                    RunnerPhase.RUNNING if alive else RunnerPhase.STOPPED,
                )
            )
        return listed

    async def events(self) -> AsyncIterator[RuntimeEvent]:
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._config.keep_runners_on_exit:
            await self.terminate(list(self._runners))
        for runner in list(self._runners.values()):
            if runner.watcher is not None:
                runner.watcher.cancel()
        await self._events.put(None)


if TYPE_CHECKING:
    from gha_scalesets.listener.runtimes.base import Runtime

    def _satisfies_runtime(runtime: LocalRuntime) -> Runtime:
        """Never called: mypy checks here that LocalRuntime has all the Runtime protocol asks."""
        return runtime
