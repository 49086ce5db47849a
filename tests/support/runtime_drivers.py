"""The world around each runtime, for the runtime contract (:mod:`tests.support.runtime_contract`):
how its cloud reports a runner running, done or crashed."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gha_scalesets.listener.runtimes.base import LaunchResult, RunnerPhase, Runtime
from tests.support.aws_events import (
    ec2_spot_warning,
    ec2_state_event,
    ecs_task_event,
    ecs_task_exited,
    send_events,
)
from tests.support.k8s_objects import oom_killed

_SIGNALS = {RunnerPhase.STOPPED: signal.SIGUSR1, RunnerPhase.FAILED: signal.SIGUSR2}


@dataclass
class _QueueDriver:
    """EventBridge's events about runners, put into the runtime's SQS queue as its rule would."""

    runtime: Runtime
    sqs: Any
    queue_url: str

    def event(self, runner: LaunchResult, phase: RunnerPhase) -> dict[str, Any]:
        raise NotImplementedError

    def terminated(self, runner: LaunchResult) -> dict[str, Any]:
        raise NotImplementedError

    async def _send(self, events: list[dict[str, Any]]) -> None:
        await asyncio.to_thread(send_events, self.sqs, self.queue_url, events)

    async def report(self, runner: LaunchResult, phase: RunnerPhase) -> None:
        await self._send([self.event(runner, phase)])

    async def report_terminated(self, runners: Sequence[LaunchResult]) -> None:
        await self._send([self.terminated(runner) for runner in runners])


class Ec2Driver(_QueueDriver):
    """Instance state changes and spot interruption warnings."""

    unknown_id = "i-0123456789abcdef0"
    reports_running = True

    def event(self, runner: LaunchResult, phase: RunnerPhase) -> dict[str, Any]:
        instance = str(runner.provider_id)
        if phase is RunnerPhase.FAILED:
            return ec2_spot_warning(instance)
        return ec2_state_event(
            instance, "running" if phase is RunnerPhase.RUNNING else "terminated"
        )

    def terminated(self, runner: LaunchResult) -> dict[str, Any]:
        return self.event(runner, RunnerPhase.STOPPED)


@dataclass
class EcsDriver(_QueueDriver):
    """Task state changes, of the task as ECS describes it."""

    ecs: Any = None
    cluster: str = ""
    unknown_id = "arn:aws:ecs:us-east-1:123456789012:task/runners/0123456789abcdef0"
    reports_running = True

    def _task(self, runner: LaunchResult) -> dict[str, Any]:
        return self.ecs.describe_tasks(cluster=self.cluster, tasks=[runner.provider_id])["tasks"][0]

    def event(self, runner: LaunchResult, phase: RunnerPhase) -> dict[str, Any]:
        if phase is RunnerPhase.RUNNING:
            return ecs_task_event(self._task(runner), "RUNNING")
        return ecs_task_exited(self._task(runner), 1 if phase is RunnerPhase.FAILED else 0)

    def terminated(self, runner: LaunchResult) -> dict[str, Any]:
        return ecs_task_event(self._task(runner), "STOPPED", stopCode="UserInitiated")


_POD_PHASES = {
    RunnerPhase.RUNNING: ("Running", {}),
    RunnerPhase.STOPPED: ("Succeeded", {}),
    RunnerPhase.FAILED: ("Failed", {"containerStatuses": oom_killed("runner")}),
}


@dataclass
class K8sDriver:
    """The kubelet: a runner pod's phase, set by ``set_phase(pod name, phase, **status)``
    (the fake API server's state, or a real apiserver's status subresource). The runtime
    sees deletions itself, through its watch."""

    runtime: Runtime
    set_phase: Callable[..., None]
    unknown_id: str = "never-launched"
    reports_running: bool = True

    async def report(self, runner: LaunchResult, phase: RunnerPhase) -> None:
        pod_phase, status = _POD_PHASES[phase]
        await asyncio.to_thread(self.set_phase, runner.provider_id, pod_phase, **status)

    async def report_terminated(self, runners: Sequence[LaunchResult]) -> None:
        """A deleted pod is the runtime's own news."""


def kubelet(admin: Any, namespace: str) -> Callable[..., None]:
    """``set_phase(pod name, phase, **status)`` as a kubelet does it on a real apiserver: through
    the pod's status subresource (``admin``: a :class:`tests.support.kube_rest.KubeRest`)."""

    def set_phase(pod: str, phase: str, **status: Any) -> None:
        admin.patch(
            f"/api/v1/namespaces/{namespace}/pods/{pod}/status",
            {"status": {"phase": phase, **status}},
        )

    return set_phase


# The stand-in runner of the local runtime: running until a signal says how it ends.
RUN_SH = """#!/bin/sh
trap 'exit 0' USR1
trap 'exit 3' USR2
trap 'exit 0' TERM
while :; do sleep 1 & wait $!; done
"""


def stand_in_runner(directory: Path) -> Path:
    """An actions-runner directory whose ``run.sh`` is :data:`RUN_SH`."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "run.sh"
    script.write_text(RUN_SH)
    script.chmod(0o755)
    return directory


@dataclass
class LocalDriver:
    """Runner processes that end when signalled: SIGUSR1 with exit code 0, SIGUSR2 with 3.
    The runtime sees exits itself, and a process runs from its launch (no RUNNING event)."""

    runtime: Runtime
    unknown_id: str = "local-999999999"
    reports_running: bool = False

    async def report(self, runner: LaunchResult, phase: RunnerPhase) -> None:
        signum = {RunnerPhase.STOPPED: signal.SIGUSR1, RunnerPhase.FAILED: signal.SIGUSR2}.get(
            phase
        )
        if signum is not None:
            os.kill(int(str(runner.provider_id).removeprefix("local-")), signum)

    async def report_terminated(self, runners: Sequence[LaunchResult]) -> None:
        """An exit is the runtime's own news."""
