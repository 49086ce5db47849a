"""Runners as ECS tasks (Fargate or a capacity provider) from the runner task definition.

Runners of one scale set start together: one ``RunTask`` per up to ``launch_batch_size`` (at
most 10) tasks, started with ``startedBy=gha-scaleset-<id>`` (which both the state events and
reconciliation filter on) and the scale set's tag, paced within ECS's and Fargate's rate limits
(``aws_limits``). The container override carries only where the JIT configs are
(``GHA_JIT_PARAMETER_PATH``), never a config: whoever can describe a task never sees one. Once
the tasks exist, each runner's JIT config goes to a SecureString
``<ssm_prefix>/<scale set id>/<task id>``; the container entrypoint from
:func:`~gha_scalesets.contract.boot.runner_entrypoint` finds its task id in the task metadata,
reads (retrying until the listener wrote it) and deletes the parameter, drops the task-role
credentials and execs the runner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import zip_longest
from typing import TYPE_CHECKING, Any

import structlog

from gha_scalesets.contract.names import (
    ECS_STARTED_BY_PREFIX,
    JIT_PARAMETER_PATH_ENV,
    TAG_RUNNER_NAME,
    TAG_SCALE_SET_ID,
    TAG_TASK_ARN,
)
from gha_scalesets.listener.aws import (
    AWS_ERRORS,
    call,
    chunks,
    error_code,
    error_message,
    is_transient,
)
from gha_scalesets.listener.config import EcsRuntimeConfig
from gha_scalesets.listener.runtimes._aws_runtime import AwsRuntime, batches
from gha_scalesets.listener.runtimes._launch import for_each
from gha_scalesets.listener.runtimes._pacing import ApiLimit
from gha_scalesets.listener.runtimes.aws_events import ECS_PHASES, parse_ecs_event
from gha_scalesets.listener.runtimes.aws_limits import ecs_limits
from gha_scalesets.listener.runtimes.base import (
    LaunchResult,
    RunnerPhase,
    RunnerSpec,
    RuntimeEvent,
    RuntimeRunner,
)

log = structlog.get_logger(__name__)

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
_FARGATE = frozenset({"FARGATE", "FARGATE_SPOT"})


def task_id(task_arn: str) -> str:
    """The id at the end of a task ARN (``.../cluster/<id>``): the key of its JIT parameter."""
    return task_arn.rsplit("/", 1)[-1]


class EcsRuntime(AwsRuntime[EcsRuntimeConfig]):
    """Runners as ECS tasks; see the module docstring for the life of one runner."""

    name = "ecs"

    def _documented_limits(self) -> dict[str, ApiLimit]:
        config = self._config
        return ecs_limits(
            fargate=(config.capacity_provider or config.launch_type or "") in _FARGATE
        )

    async def launch(self, runners: Sequence[RunnerSpec]) -> list[LaunchResult]:
        """Up to ``launch_batch_size`` tasks of one scale set per ``RunTask``."""
        groups = batches(runners, self._config.launch_batch_size)
        return await self._launch_batches(runners, groups, self._launch_batch)

    async def _launch_batch(self, _index: int, runners: list[RunnerSpec]) -> list[LaunchResult]:
        scale_set_id = runners[0].scale_set_id
        try:
            reply = await call(
                self._api,
                "run_task",
                self._retry,
                errors=self.launch_errors,
                pacer=self.pacer,
                resources=len(runners),
                **self._run_params(scale_set_id, len(runners)),
            )
        except AWS_ERRORS as exc:
            code = error_code(exc)
            log.warning("launch request failed", runners=len(runners), error=code)
            failure = f"RunTask failed: {error_message(exc)}"
            return [
                LaunchResult(s.runner_name, error=failure, retryable=is_transient(code))
                for s in runners
            ]
        arns = [t["taskArn"] for t in reply.get("tasks") or []]
        reason = next((f.get("reason", "") for f in reply.get("failures") or []), "")
        launched: list[tuple[RunnerSpec, str]] = []
        refused: dict[str, LaunchResult] = {}
        for spec, arn in zip_longest(runners, arns[: len(runners)]):
            if arn is not None:
                launched.append((spec, arn))
                continue
            self.launch_errors[f"RunTask:{reason or 'no task'}"] += 1
            log.warning("no task started for the runner", runner=spec.runner_name, reason=reason)
            refused[spec.runner_name] = LaunchResult(
                spec.runner_name,
                error=f"RunTask started no task: {reason or 'no reason given'}",
                retryable=any(hint in reason for hint in _CAPACITY_HINTS),
            )
        handed = await self._hand_over(
            launched,
            lambda spec, arn: {
                TAG_SCALE_SET_ID: str(spec.scale_set_id),
                TAG_RUNNER_NAME: spec.runner_name,
                TAG_TASK_ARN: arn,
            },
        )
        done = {r.runner_name: r for r in handed} | refused
        return [done[s.runner_name] for s in runners]

    def _run_params(self, scale_set_id: int, count: int) -> dict[str, Any]:
        config = self._config
        params: dict[str, Any] = {
            "cluster": config.cluster,
            "taskDefinition": config.task_definition,
            "count": count,
            "startedBy": f"{ECS_STARTED_BY_PREFIX}{scale_set_id}",
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
                            {
                                "name": JIT_PARAMETER_PATH_ENV,
                                "value": self._params.path(scale_set_id),
                            }
                        ],
                    }
                ]
            },
            "tags": [{"key": TAG_SCALE_SET_ID, "value": str(scale_set_id)}],
        }
        if config.capacity_provider:
            params["capacityProviderStrategy"] = [
                {"capacityProvider": config.capacity_provider, "weight": 1}
            ]
        elif config.launch_type:
            params["launchType"] = config.launch_type
        return params

    async def _discard(self, provider_ids: Sequence[str]) -> None:
        await for_each(provider_ids, self._config.launch_concurrency, self._stop)

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
                pacer=self.pacer,
                cluster=self._config.cluster,
                task=arn,
                reason="gha-scalesets: runner no longer needed",
            )
        except AWS_ERRORS as exc:
            code = error_code(exc)
            # AWS answers an unknown task with "InvalidParameterException: The
            # referenced task was not found."
            if code != "InvalidParameterException":
                self.terminate_errors[code] += 1
                log.warning("could not stop the task", task=arn, error=code)

    async def list_runners(self, scale_set_id: int) -> list[RuntimeRunner]:
        """The scale set's tasks (``ListTasks`` by ``startedBy``, then ``DescribeTasks`` per
        100); also sweeps JIT parameters that no live task will read."""
        listed_at = self._clock()
        arns: list[str] = []
        async for page in self._pages(
            "list_tasks",
            "nextToken",
            cluster=self._config.cluster,
            startedBy=f"{ECS_STARTED_BY_PREFIX}{scale_set_id}",
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
        await self._reconciled(scale_set_id, runners, listed_at)
        return runners

    def _runner(self, scale_set_id: int, task: Mapping[str, Any]) -> RuntimeRunner:
        tags = {t["key"]: t["value"] for t in task.get("tags", [])}
        runner_name = self._runner_name(task["taskArn"], tags, TAG_RUNNER_NAME)
        self._adopt(task["taskArn"], runner_name, scale_set_id)
        phase = _STATUS_PHASES.get(task.get("lastStatus", ""), RunnerPhase.PENDING)
        return RuntimeRunner(runner_name, task["taskArn"], scale_set_id, phase)

    def _param_key(self, provider_id: str, runner_name: str) -> str:
        # Written once the task exists: the entrypoint finds its id in the task metadata.
        return task_id(provider_id)

    def _parse(self, raw: Mapping[str, Any]) -> RuntimeEvent | None:
        cluster = (raw.get("detail") or {}).get("clusterArn", "")
        if cluster != self._config.cluster and not cluster.endswith(f"/{self._config.cluster}"):
            return None  # another cluster's runners, same queue
        event = parse_ecs_event(raw, ECS_STARTED_BY_PREFIX)
        return None if event is None else self._with_owner(event)


if TYPE_CHECKING:
    from gha_scalesets.listener.runtimes.base import Runtime

    def _satisfies_runtime(runtime: EcsRuntime) -> Runtime:
        """Never called: mypy checks here that EcsRuntime has all the Runtime protocol asks."""
        return runtime
