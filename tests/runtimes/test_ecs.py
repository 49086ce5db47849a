"""The ECS runtime end to end against moto's server over HTTP, with the real boto3."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest

from gha_scalesets.listener.runtimes.base import RunnerPhase
from gha_scalesets.listener.runtimes.ecs import task_id
from tests.support.aws_errors import Fault
from tests.support.aws_events import ecs_task_event, ecs_task_exited, queue_depth, send_events
from tests.support.runtimes import describe_and_list_calls, jit_config, specs, take

PREFIX = "/gha-scalesets/jit"


def _tasks(ecs: Any, arns: list[str]) -> dict[str, dict[str, Any]]:
    tasks = ecs.describe_tasks(cluster="runners", tasks=arns, include=["TAGS"])["tasks"]
    return {t["taskArn"]: t for t in tasks}


def _params(ssm: Any, path: str) -> dict[str, str]:
    pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=path, WithDecryption=True)
    return {p["Name"]: p["Value"] for page in pages for p in page["Parameters"]}


async def test_burst_events_terminate_and_orphans(
    make_ecs_runtime: Any, boto_client: Any, network: Any
) -> None:
    now = [time.time()]
    runtime = make_ecs_runtime(clock=lambda: now[0])
    ecs, ssm, sqs = boto_client("ecs"), boto_client("ssm"), boto_client("sqs")
    burst = specs(12)

    results = await runtime.launch(burst)

    assert all(r.provider_id and r.error is None for r in results)
    by_arn = {r.provider_id: r.runner_name for r in results}
    tasks = _tasks(ecs, list(by_arn))
    assert set(tasks) == set(by_arn)
    for task in tasks.values():
        assert task["startedBy"] == "gha-scaleset-7"
        assert {t["key"]: t["value"] for t in task["tags"]} == {"gha-scaleset-id": "7"}
        env = {
            e["name"]: e["value"] for e in task["overrides"]["containerOverrides"][0]["environment"]
        }
        # The tasks carry where their parameters are, never a JIT config.
        assert env == {"GHA_JIT_PARAMETER_PATH": f"{PREFIX}/7"}
        assert all(jit_config(r) not in json.dumps(task, default=str) for r in by_arn.values())
    # One parameter per task, named by its id (the entrypoint reads the id from the metadata).
    assert _params(ssm, f"{PREFIX}/7") == {
        f"{PREFIX}/7/{task_id(arn)}": jit_config(runner) for arn, runner in by_arn.items()
    }
    assert runtime.api_calls["ecs:RunTask"] == 2  # 10 tasks, then 2
    assert runtime.api_calls["ssm:PutParameter"] == 12
    assert describe_and_list_calls(runtime.api_calls) == 0

    # State events: all running; two finish, one crashes, one loses its spot capacity. Noise:
    # a duplicate, a task of another cluster, a task not started by a listener.
    arns = list(by_arn)
    stranger = dict(tasks[arns[0]], startedBy="ecs-svc/1234567890", taskArn=f"{arns[0]}-svc")
    elsewhere = dict(tasks[arns[1]], clusterArn="arn:aws:ecs:us-east-1:123456789012:cluster/other")
    send_events(sqs, network.queue_url, [ecs_task_event(tasks[a], "RUNNING") for a in arns])
    send_events(
        sqs,
        network.queue_url,
        [
            ecs_task_exited(tasks[arns[0]], 0),
            ecs_task_exited(tasks[arns[1]], 0),
            ecs_task_exited(tasks[arns[2]], 137),
            ecs_task_event(
                tasks[arns[3]],
                "STOPPED",
                stopCode="SpotInterruption",
                stoppedReason="Your Spot Task was interrupted.",
            ),
            ecs_task_exited(tasks[arns[0]], 0),
            ecs_task_event(stranger, "RUNNING"),
            ecs_task_event(elsewhere, "STOPPED", stopCode="UserInitiated"),
        ],
    )
    stream = runtime.events()
    got = await take(stream, 12 + 4)
    assert all(e.runner_name == by_arn[e.provider_id] and e.scale_set_id == 7 for e in got)
    assert Counter(e.phase for e in got) == {
        RunnerPhase.RUNNING: 12,
        RunnerPhase.STOPPED: 2,
        RunnerPhase.FAILED: 2,
    }
    ended = {e.provider_id: (e.phase, e.reason) for e in got if e.phase is not RunnerPhase.RUNNING}
    assert ended[arns[3]] == (RunnerPhase.FAILED, "Your Spot Task was interrupted.")
    assert ended[arns[2]][0] is RunnerPhase.FAILED  # exit code 137
    assert describe_and_list_calls(runtime.api_calls) == 0

    # Termination on job completion: the tasks stop, their unread parameters go.
    await runtime.terminate(arns[:4])
    assert {t["desiredStatus"] for t in _tasks(ecs, arns[:4]).values()} == {"STOPPED"}
    assert runtime.api_calls["ecs:StopTask"] == 4
    left = _params(ssm, f"{PREFIX}/7")
    assert set(left) == {f"{PREFIX}/7/{task_id(a)}" for a in arns[4:]}
    assert runtime.terminate_errors == Counter()
    assert describe_and_list_calls(runtime.api_calls) == 0

    # Reconciliation an hour later: a task we started but do not know (an orphan) and an
    # unread parameter of a runner that never got a task.
    orphan = ecs.run_task(
        cluster="runners",
        taskDefinition="runner",
        launchType="FARGATE",
        startedBy="gha-scaleset-7",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": network.subnet_ids[:1],
                "securityGroups": [network.security_group_id],
            }
        },
        tags=[{"key": "gha-scaleset-runner", "value": "linux-x64-orphan"}],
    )["tasks"][0]["taskArn"]
    ssm.put_parameter(Name=f"{PREFIX}/7/linux-x64-gone", Value="x", Type="SecureString")
    now[0] += 3600
    listed = await runtime.list_runners(7)

    assert {r.provider_id: r.runner_name for r in listed} == {
        **{a: by_arn[a] for a in arns[4:]},
        orphan: "linux-x64-orphan",
    }
    assert all(r.phase is RunnerPhase.RUNNING for r in listed)
    assert runtime.api_calls["ecs:ListTasks"] == 1
    assert runtime.api_calls["ecs:DescribeTasks"] == 1
    assert set(_params(ssm, f"{PREFIX}/7")) == set(left)  # the stray parameter was swept

    await runtime.close()
    assert [e async for e in stream] == []
    assert queue_depth(sqs, network.queue_url) == 0


async def test_throttling_is_retried_and_a_denial_is_final(
    make_ecs_runtime: Any, fault_proxy: Any, boto_client: Any
) -> None:
    runtime = make_ecs_runtime(endpoint=fault_proxy.url, capacity_provider="FARGATE_SPOT")
    fault_proxy.faults = [Fault("RunTask", "ThrottlingException", 400, times=1)]
    [ok] = await runtime.launch(specs(1))
    assert ok.provider_id
    assert runtime.launch_errors == {"ThrottlingException": 1}
    assert runtime.pacer.rate("ecs:RunTask") == pytest.approx(20 / 2 + 20 / 20)
    task = _tasks(boto_client("ecs"), [ok.provider_id])[ok.provider_id]
    assert task["capacityProviderName"] == "FARGATE_SPOT"

    fault_proxy.faults = [Fault("RunTask", "AccessDeniedException", 400)]
    denied = await runtime.launch(specs(3, start=1))

    assert all(r.provider_id is None and not r.retryable for r in denied)
    assert all("RunTask failed: AccessDeniedException" in r.error for r in denied)
    assert fault_proxy.hits["RunTask"] == 2 + 1  # the three shared one request
    # Only the started runner's parameter exists: the others never had a task to name one.
    assert set(_params(boto_client("ssm"), f"{PREFIX}/7")) == {
        f"{PREFIX}/7/{task_id(ok.provider_id)}"
    }


async def test_a_task_whose_config_cannot_be_stored_is_stopped(
    make_ecs_runtime: Any, fault_proxy: Any, boto_client: Any
) -> None:
    runtime = make_ecs_runtime(endpoint=fault_proxy.url, launch_concurrency=1)
    fault_proxy.faults = [Fault("PutParameter", "AccessDeniedException", 400, times=1)]

    results = await runtime.launch(specs(3))

    failed = [r for r in results if r.provider_id is None]
    assert len(failed) == 1 and not failed[0].retryable
    assert failed[0].error == "could not store the JIT config in SSM: AccessDeniedException"
    assert fault_proxy.hits["RunTask"] == 1 and fault_proxy.hits["StopTask"] == 1
    stopped = boto_client("ecs").list_tasks(cluster="runners", desiredStatus="STOPPED")
    assert len(stopped["taskArns"]) == 1
    assert stopped["taskArns"][0] not in {r.provider_id for r in results}
