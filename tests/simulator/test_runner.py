"""Runner emulator and the end-to-end flow: queued -> assigned -> JIT runners -> completed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from gha_scalesets.simulator.jit import JitConfig
from gha_scalesets.simulator.runner import JIT_CONFIG_ENV, main, run_runner
from gha_scalesets.simulator.testing import SimulatorServer
from tests.simulator.raw import AGENTS, MQ_ACCEPT, Admin, connect, job_messages

JIT_ROUTE = "POST /_apis/runtime/runnerscalesets/{id}/generatejitconfig"


@pytest.fixture
def admin(http: httpx.Client, sim: SimulatorServer) -> Admin:
    return connect(http, sim)


async def _eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def test_runner_process_takes_a_job_and_exits(sim: SimulatorServer, admin: Admin) -> None:
    ss = admin.create_scale_set("proc")
    listener = admin.listener(ss["id"])
    listener.get()
    (job_id,) = sim.queue_jobs(["proc"], 1, duration_seconds=0.05)
    last_id, _ = listener.next_events()
    blob = admin.jit(ss["id"], "proc-runner").json()["encodedJITConfig"]
    env = {**os.environ, JIT_CONFIG_ENV: blob}
    done = subprocess.run(
        [sys.executable, "-m", "gha_scalesets.simulator.runner"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"job {job_id} succeeded" in done.stdout
    secret = JitConfig.decode(blob).secret
    for output in (done.stdout, done.stderr):
        assert blob not in output and secret not in output
    _, events = listener.next_events(last_id)
    assert [e["messageType"] for e in events] == ["JobStarted", "JobCompleted"]
    assert events[0]["runnerName"] == "proc-runner"
    assert events[1]["result"] == "succeeded"
    assert events[1]["runnerId"] == events[0]["runnerId"]
    # ephemeral: deregistered after its job
    assert admin.call("GET", AGENTS, params={"agentName": "proc-runner"}).json()["count"] == 0


def test_invalid_jit_config_is_rejected_without_echo(capsys: pytest.CaptureFixture[str]) -> None:
    blob = "bm90IGEgaml0IGNvbmZpZw=="  # base64 of "not a jit config"
    assert main(["--jitconfig", blob]) == 2
    captured = capsys.readouterr()
    assert "JIT config is not valid" in captured.err
    assert blob not in captured.err + captured.out


async def test_idle_runner_removed_by_the_listener_exits(
    sim: SimulatorServer, admin: Admin
) -> None:
    ss = admin.create_scale_set("idle")
    body = admin.jit(ss["id"], "idle-runner").json()
    task = asyncio.create_task(run_runner(body["encodedJITConfig"]))
    await _eventually(lambda: sim.stats()["runners"]["online"] == 1)
    assert admin.call("DELETE", f"{AGENTS}/{body['runner']['id']}").status_code == 204
    outcome = await asyncio.wait_for(task, 10)
    assert outcome.status == "removed"
    assert outcome.job_id is None


async def test_200_jobs_flow_through_jit_runners(sim: SimulatorServer, admin: Admin) -> None:
    total, capacity = 200, 50
    ss = admin.create_scale_set("flow")
    listener = admin.listener(ss["id"], owner="flow-listener")
    queue_url = httpx.URL(listener.session["messageQueueUrl"])
    mq_headers = {
        "Authorization": f"Bearer {listener.token}",
        "Accept": MQ_ACCEPT,
        "X-ScaleSetMaxCapacity": str(capacity),
    }
    job_ids = sim.queue_jobs(["flow"], total, duration_seconds=0.05)
    seen: Counter[str] = Counter()
    max_assigned = 0
    runners: list[asyncio.Task] = []
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        last_id = polls = idle_polls = 0
        deadline = time.monotonic() + 90
        while seen["JobCompleted"] < total:
            assert time.monotonic() < deadline, f"stuck at {seen}"
            url = queue_url.copy_merge_params({"lastMessageId": last_id}) if last_id else queue_url
            response = await client.get(url, headers=mq_headers)
            polls += 1
            if response.status_code == 202:
                idle_polls += 1
                continue
            assert response.status_code == 200
            message = response.json()
            last_id = message["messageId"]
            max_assigned = max(max_assigned, message["statistics"]["totalAssignedJobs"])
            ack = queue_url.copy_with(path=f"{queue_url.path}/{last_id}")
            assert (await client.delete(ack, headers=mq_headers)).status_code == 204
            for event in job_messages(message):
                seen[event["messageType"]] += 1
                if event["messageType"] == "JobAssigned":
                    jit = await client.post(
                        f"{admin.base}_apis/runtime/runnerscalesets/{ss['id']}/generatejitconfig",
                        params={"api-version": "6.0-preview"},
                        headers={"Authorization": f"Bearer {admin.token}"},
                        json={"name": f"flow-{event['runnerRequestId']}", "workFolder": ""},
                    )
                    assert jit.status_code == 200
                    blob = jit.json()["encodedJITConfig"]
                    runners.append(asyncio.create_task(run_runner(blob, client=client)))
                elif event["messageType"] == "JobCompleted":
                    assert event["result"] == "succeeded"
        outcomes = await asyncio.gather(*runners)

    assert seen == {"JobAssigned": total, "JobStarted": total, "JobCompleted": total}
    assert sorted(o.job_id for o in outcomes) == job_ids
    assert {o.status for o in outcomes} == {"completed"}
    assert 0 < max_assigned <= capacity
    stats = sim.stats()
    assert stats["jobs"] == {
        "queued": 0,
        "assigned": 0,
        "running": 0,
        "completed": total,
        "canceled": 0,
        "reassigned": 0,
    }
    assert stats["runners"] == {
        "registered": 0,
        "online": 0,
        "busy": 0,
        "duplicate_names": 0,
        "by_scale_set": {},
    }
    assert stats["requests"][JIT_ROUTE] == total
    assert stats["requests"]["GET /message"] == polls
    assert stats["requests"]["DELETE /message/{id}"] == polls - idle_polls
    assert stats["runner_requests"]["POST /_sim/runner/{id}/complete"] == total
    assert not any(key.startswith("POST /_sim/runner") for key in stats["requests"])
