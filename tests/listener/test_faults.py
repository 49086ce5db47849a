"""Regressions from the fault matrix: a deleted and recreated scale set, runners that never
come online, and debug logging of AWS calls."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydantic import SecretStr

from gha_scalesets.listener.app import Listener
from gha_scalesets.listener.logs import configure_logging
from gha_scalesets.scaleset import Client, PatCredentials
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT
from tests.support.github import ORG, create_scale_set, jobs_done
from tests.support.inprocess import InProcessRuntime
from tests.support.listener import listener_settings, running_listener
from tests.support.waits import wait_for


def registry_empty(listener: Listener, scale_set_id: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await listener.registry.count(scale_set_id) == 0

    return check


async def test_a_recreated_scale_set_is_served_under_its_new_id(
    sim: SimulatorServer, state_dir: Path
) -> None:
    deleted = await create_scale_set(sim, "recreated")
    settings = listener_settings(sim, state_dir, "recreated", max_runners=2)
    async with running_listener(settings, runtime=InProcessRuntime()) as listener:
        await wait_for(lambda: all(listener.ready().values()), 10, "the session")
        async with Client(sim.config_url(ORG), PatCredentials(SecretStr(SIM_PAT))) as admin:
            await admin.delete_scale_set(deleted.id)
        worker = listener.workers[deleted.id]
        await wait_for(lambda: not worker.ready, 10, "the deleted scale set's session to end")
        recreated = await create_scale_set(sim, "recreated")
        await wait_for(lambda: worker.ready, 10, "a session on the recreated scale set")
        assert worker.scaler.ss_id == recreated.id != deleted.id
        sim.queue_jobs(["recreated"], count=3, duration_seconds=0.1)
        await wait_for(jobs_done(sim, 3), 30, "the jobs of the recreated scale set")
        await wait_for(registry_empty(listener, recreated.id), 15, "every runner released")
        assert not any(task.done() for task in listener._tasks), "a listener loop died"


async def test_a_runner_that_never_comes_online_is_replaced(
    sim: SimulatorServer, state_dir: Path
) -> None:
    await create_scale_set(sim, "hung")
    online = asyncio.Event()  # runners hang before registering their session until set
    runtime = InProcessRuntime(hold=online)
    settings = listener_settings(sim, state_dir, "hung", max_runners=1, launch_timeout_seconds=1.0)
    async with running_listener(settings, runtime=runtime) as listener:
        await wait_for(lambda: all(listener.ready().values()), 10, "the session")
        sim.queue_jobs(["hung"], count=1, duration_seconds=0.1)
        await wait_for(lambda: runtime.launched, 10, "the first runner")
        first = runtime.launched[0]
        # max_runners=1: a second launch means the hung runner's slot was freed.
        await wait_for(lambda: len(runtime.launched) >= 2, 15, "a replacement runner")
        async with Client(sim.config_url(ORG), PatCredentials(SecretStr(SIM_PAT))) as admin:
            assert await admin.get_runner_by_name(first) is None  # removed on GitHub too
        assert runtime.running == 1  # the hung runner was stopped in the runtime
        online.set()
        await wait_for(jobs_done(sim, 1), 20, "the job on the replacement")
        ss_id = next(iter(listener.workers))
        await wait_for(registry_empty(listener, ss_id), 15, "every runner released")


def test_debug_level_keeps_aws_request_logging_quiet() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("debug", stream=stream)
        for name in ("botocore.endpoint", "boto3.resources", "urllib3.connectionpool"):
            logging.getLogger(name).debug("request params: JIT-CANARY")
        logging.getLogger("listener.test").debug("own debug line")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    assert "JIT-CANARY" not in stream.getvalue()
    assert "own debug line" in stream.getvalue()
