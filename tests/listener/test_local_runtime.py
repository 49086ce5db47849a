"""The local runtime with real child processes (a stand-in ``run.sh`` in a runner directory)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gha_scalesets.listener.config import LocalRuntimeConfig
from gha_scalesets.listener.runtimes.base import RunnerPhase, RunnerSpec, RuntimeEvent
from gha_scalesets.listener.runtimes.local import LocalRuntime
from tests.support.waits import wait_for

SS = 3
# The JIT config tells the stand-in runner what to do; it also records what it inherited.
RUN_SH = """#!/bin/sh
dir="$(dirname "$0")"
env > "$dir/.env-$$" && mv "$dir/.env-$$" "$dir/env-$$"
case "$ACTIONS_RUNNER_INPUT_JITCONFIG" in
  succeed) exit 0 ;;
  crash) exit 3 ;;
  *) exec sleep 60 ;;
esac
"""


@pytest.fixture
def runner_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "actions-runner"
    directory.mkdir()
    script = directory / "run.sh"
    script.write_text(RUN_SH)
    script.chmod(0o755)
    return directory


def make_runtime(runner_dir: Path, state_dir: Path, keep: bool = False) -> LocalRuntime:
    config = LocalRuntimeConfig(
        runner_dir=runner_dir, keep_runners_on_exit=keep, stop_grace_seconds=2
    )
    return LocalRuntime(config, state_dir)


@pytest.fixture
async def runtime(runner_dir: Path, tmp_path: Path) -> AsyncIterator[LocalRuntime]:
    rt = make_runtime(runner_dir, tmp_path / "state")
    yield rt
    await rt.close()


def spec(name: str, behaviour: str) -> RunnerSpec:
    return RunnerSpec(SS, "linux", name, runner_id=1, jit_config=behaviour)


async def next_events(runtime: LocalRuntime, count: int) -> list[RuntimeEvent]:
    events = runtime.events()
    return [await asyncio.wait_for(anext(events), 10) for _ in range(count)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_runners_get_only_their_jit_config_and_exit_codes_are_reasons(
    runtime: LocalRuntime, runner_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LISTENER_CREDENTIALS", '{"token": "ghp_secret"}')
    results = await runtime.launch(
        [spec("ok", "succeed"), spec("bad", "crash"), spec("long", "wait")]
    )
    events = {e.runner_name: e for e in await next_events(runtime, 2)}
    assert events["bad"].phase is RunnerPhase.FAILED and events["bad"].reason == "exit code 3"
    # Runners get their JIT config from the environment, never the listener's settings.
    await wait_for(lambda: len(list(runner_dir.glob("env-*"))) == 3, 10, "3 environments")
    inherited = [p.read_text() for p in runner_dir.glob("env-*")]
    assert all(
        "LISTENER_" not in env and "ACTIONS_RUNNER_INPUT_JITCONFIG=" in env for env in inherited
    )
    pid = int(str(results[2].provider_id).removeprefix("local-"))
    assert b"wait" not in Path(f"/proc/{pid}/cmdline").read_bytes()

    await runtime.terminate([str(results[2].provider_id)])
    (stopped,) = await next_events(runtime, 1)
    assert (stopped.runner_name, stopped.reason) == ("long", "terminated")
    assert not alive(pid)


async def test_a_restarted_listener_adopts_live_runners(runner_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = make_runtime(runner_dir, state, keep=True)
    (launched,) = await first.launch([spec("survivor", "wait")])
    await first.close()  # like a listener restart: the runner keeps running
    pid = int(str(launched.provider_id).removeprefix("local-"))
    assert alive(pid)

    second = make_runtime(runner_dir, state)
    try:
        listed = await second.list_runners(SS)
        assert [(r.runner_name, r.provider_id, r.phase) for r in listed] == [
            ("survivor", launched.provider_id, RunnerPhase.RUNNING)
        ]
        os.kill(pid, 9)  # it ends on its own: the adopted runner still yields an event
        (event,) = await next_events(second, 1)
        assert (event.runner_name, event.phase) == ("survivor", RunnerPhase.STOPPED)
        assert await second.list_runners(SS) == []
    finally:
        await second.close()


async def test_close_stops_runners_unless_kept(runtime: LocalRuntime) -> None:
    (launched,) = await runtime.launch([spec("idle", "wait")])
    pid = int(str(launched.provider_id).removeprefix("local-"))
    await runtime.close()
    assert not alive(pid)
    (late,) = await runtime.launch([spec("late", "wait")])
    assert late.provider_id is None and "closed" in str(late.error)


async def test_github_jit_config_needs_a_runner_dir(tmp_path: Path) -> None:
    rt = LocalRuntime(LocalRuntimeConfig(), tmp_path / "state")
    try:
        (result,) = await rt.launch([spec("real", "eyJnaXRodWIiOiB0cnVlfQ==")])
        assert result.provider_id is None and "runner_dir" in str(result.error)
    finally:
        await rt.close()
