"""Runners as ECS tasks (Fargate or a capacity provider) from the runner task definition.

Per runner: the JIT config goes to a SecureString ``<ssm_prefix>/<scale set id>/<runner name>``
first, then one ``RunTask`` whose container override carries only the parameter's NAME
(``GHA_JIT_PARAMETER``) and the runner name: whoever can describe the task never sees the
config. The container entrypoint from ``runner_entrypoint`` reads and deletes the parameter,
drops the task-role credentials and execs the runner. Tasks are started with
``startedBy=gha-scaleset-<id>``, which both the state events and reconciliation filter on.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from gha_scalesets.listener.config import EcsRuntimeConfig
from gha_scalesets.listener.network import ca_setup_script
from gha_scalesets.listener.runtimes._aws import (
    call,
    chunks,
    error_code,
    error_message,
    is_transient,
)
from gha_scalesets.listener.runtimes._aws_runtime import AwsRuntime
from gha_scalesets.listener.runtimes._launch import for_each
from gha_scalesets.listener.runtimes._ssm import jit_fetch_script
from gha_scalesets.listener.runtimes.aws_events import ECS_PHASES, RUNNER_NAME_ENV, parse_ecs_event
from gha_scalesets.listener.runtimes.base import (
    LaunchResult,
    RunnerPhase,
    RunnerSpec,
    RuntimeEvent,
    RuntimeRunner,
)

log = structlog.get_logger(__name__)

STARTED_BY_PREFIX = "gha-scaleset-"
TAG_SCALE_SET_ID = "gha-scaleset-id"
TAG_RUNNER_NAME = "gha-scaleset-runner"
ENV_PARAMETER = "GHA_JIT_PARAMETER"

_STATUS_PHASES = {
    **ECS_PHASES,
    "DEACTIVATING": RunnerPhase.STOPPED,
    "STOPPING": RunnerPhase.STOPPED,
    "DEPROVISIONING": RunnerPhase.STOPPED,
    "STOPPED": RunnerPhase.STOPPED,
}
# RunTask "failures" that say there was no room right now (Fargate capacity, EC2 resources).
_CAPACITY_HINTS = ("capacity", "RESOURCE:", "AGENT")
_DESCRIBE_BATCH = 100  # DescribeTasks accepts at most 100 tasks


class EcsRuntime(AwsRuntime[EcsRuntimeConfig]):
    """Runners as ECS tasks; see the module docstring for the life of one runner."""

    name = "ecs"

    async def launch(self, runners: Sequence[RunnerSpec]) -> list[LaunchResult]:
        """One task per runner (each has its own overrides, so no RunTask ``count``)."""
        return await self._launch_each(runners, self._launch_one)

    async def _launch_one(self, _index: int, spec: RunnerSpec) -> LaunchResult:
        parameter = self._params.name(spec.scale_set_id, spec.runner_name)
        tags = {TAG_SCALE_SET_ID: str(spec.scale_set_id), TAG_RUNNER_NAME: spec.runner_name}
        failed = await self._store_jit(spec, parameter, tags)
        if failed is not None:
            return failed
        try:
            reply = await call(
                self._api,
                "run_task",
                self._retry,
                errors=self.launch_errors,
                **self._run_params(spec, parameter, tags),
            )
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc)
            await self._params.delete([parameter])
            log.warning("runner_launch_failed", runner=spec.runner_name, error=code)
            return LaunchResult(
                spec.runner_name,
                error=f"RunTask failed: {error_message(exc)}",
                retryable=is_transient(code),
            )
        tasks = reply.get("tasks") or []
        if not tasks:
            await self._params.delete([parameter])
            reason = next((f.get("reason", "") for f in reply.get("failures") or []), "")
            self.launch_errors[f"RunTask:{reason or 'no task'}"] += 1
            log.warning("runner_launch_refused", runner=spec.runner_name, reason=reason)
            return LaunchResult(
                spec.runner_name,
                error=f"RunTask started no task: {reason or 'no reason given'}",
                retryable=any(hint in reason for hint in _CAPACITY_HINTS),
            )
        task_arn = tasks[0]["taskArn"]
        self._remember(task_arn, spec.runner_name, spec.scale_set_id)
        return LaunchResult(spec.runner_name, provider_id=task_arn)

    def _run_params(
        self, spec: RunnerSpec, parameter: str, tags: Mapping[str, str]
    ) -> dict[str, Any]:
        config = self._config
        params: dict[str, Any] = {
            "cluster": config.cluster,
            "taskDefinition": config.task_definition,
            "count": 1,
            "startedBy": f"{STARTED_BY_PREFIX}{spec.scale_set_id}",
            "networkConfiguration": {
                "awsvpcConfiguration": {
                    "subnets": config.subnet_ids,  # ECS places the task in one with room
                    "securityGroups": config.security_group_ids,
                    "assignPublicIp": "ENABLED" if config.assign_public_ip else "DISABLED",
                }
            },
            "overrides": {
                "containerOverrides": [
                    {
                        "name": config.container_name,
                        "environment": [
                            {"name": ENV_PARAMETER, "value": parameter},
                            {"name": RUNNER_NAME_ENV, "value": spec.runner_name},
                        ],
                    }
                ]
            },
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }
        if config.capacity_provider:
            params["capacityProviderStrategy"] = [
                {"capacityProvider": config.capacity_provider, "weight": 1}
            ]
        elif config.launch_type:
            params["launchType"] = config.launch_type
        return params

    async def terminate(self, provider_ids: Sequence[str]) -> None:
        """Stop tasks (one ``StopTask`` each: there is no batch) and delete their JIT
        parameters; unknown or already stopped tasks are fine.

        Failures are logged and counted in ``terminate_errors``: the next reconciliation
        lists a surviving task again.
        """
        arns = list(dict.fromkeys(provider_ids))
        await for_each(arns, self._config.launch_concurrency, self._stop)
        await self._release(arns)

    async def _stop(self, arn: str) -> None:
        try:
            await call(
                self._api,
                "stop_task",
                self._retry,
                cluster=self._config.cluster,
                task=arn,
                reason="gha-scalesets: runner no longer needed",
            )
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc)
            # AWS answers an unknown task with "InvalidParameterException: The
            # referenced task was not found."
            if code != "InvalidParameterException":
                self.terminate_errors[code] += 1
                log.warning("task_stop_failed", task=arn, error=code)

    async def list_runners(self, scale_set_id: int) -> list[RuntimeRunner]:
        """The scale set's tasks (``ListTasks`` by ``startedBy``, then ``DescribeTasks`` per
        100); also sweeps JIT parameters that no live task will read."""
        listed_at = self._clock()
        cutoff = self._sweep_cutoff()
        arns: list[str] = []
        async for page in self._pages(
            "list_tasks",
            "nextToken",
            cluster=self._config.cluster,
            startedBy=f"{STARTED_BY_PREFIX}{scale_set_id}",
            desiredStatus="RUNNING",
            maxResults=100,
        ):
            arns.extend(page.get("taskArns", []))
        runners: list[RuntimeRunner] = []
        for chunk in chunks(arns, _DESCRIBE_BATCH):
            reply = await call(
                self._api,
                "describe_tasks",
                self._retry,
                cluster=self._config.cluster,
                tasks=chunk,
                include=["TAGS"],
            )
            runners.extend(self._runner(scale_set_id, task) for task in reply.get("tasks", []))
        await self._reconciled(scale_set_id, runners, listed_at, cutoff)
        return runners

    def _runner(self, scale_set_id: int, task: Mapping[str, Any]) -> RuntimeRunner:
        tags = {t["key"]: t["value"] for t in task.get("tags", [])}
        runner_name = tags.get(TAG_RUNNER_NAME, "")
        self._adopt(task["taskArn"], runner_name, scale_set_id)
        phase = _STATUS_PHASES.get(task.get("lastStatus", ""), RunnerPhase.PENDING)
        return RuntimeRunner(runner_name, task["taskArn"], scale_set_id, phase)

    def _param_key(self, provider_id: str, runner_name: str) -> str:
        # Written before the task exists: keyed by what the launch already knows.
        return runner_name

    def _parse(self, raw: Mapping[str, Any]) -> RuntimeEvent | None:
        cluster = (raw.get("detail") or {}).get("clusterArn", "")
        if cluster != self._config.cluster and not cluster.endswith(f"/{self._config.cluster}"):
            return None  # another cluster's runners, same queue
        return parse_ecs_event(raw, STARTED_BY_PREFIX)


def runner_entrypoint(
    region: str | None = None, *, runner_command: str = "/home/runner/run.sh"
) -> str:
    """The runner container's entrypoint script (for the task definition's command).

    It reads the parameter named by ``GHA_JIT_PARAMETER`` with the task role, deletes it,
    unsets the task-role credential variables (job steps cannot fetch task-role credentials,
    so they cannot read other runners' parameters either) and execs the runner. Tracing is
    off, so the JIT config never reaches the logs. Needs the AWS CLI in the image. A private CA
    given as ``GHA_SCALESETS_CA_PEM`` (the task definition's environment) is trusted first.
    """
    return (
        "#!/bin/bash\n"
        "# gha-scalesets runner entrypoint: fetch the one-time JIT config, then run.\n"
        "set +x\n"
        "set -euo pipefail\n"
        f': "${{{ENV_PARAMETER}:?the listener sets it when it starts the task}}"\n'
        + jit_fetch_script(f"${ENV_PARAMETER}", region)
        + ca_setup_script('"$HOME/.gha-scalesets-ca"')
        + f"unset {ENV_PARAMETER} AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
        " AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN\n"
        f"exec {shlex.quote(runner_command)}\n"
    )
