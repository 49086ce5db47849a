"""EC2 and ECS state changes from EventBridge, drained from an SQS queue.

An EventBridge rule (made by the component) sends the event types of
:mod:`~gha_scalesets.contract.names` (EC2 instance state changes and spot interruption warnings,
ECS task state changes) to an SQS queue; each message body is the event itself. The runtimes
learn that runners started, finished, crashed or were interrupted from these events, so they
never poll the cloud between reconciliations.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any

import structlog
from botocore.client import BaseClient

from gha_scalesets.contract.names import (
    EC2_SPOT_INTERRUPTION,
    EC2_STATE_CHANGE,
    ECS_TASK_STATE_CHANGE,
)
from gha_scalesets.listener.aws import AWS_ERRORS, call, error_code
from gha_scalesets.listener.runtimes.base import RunnerPhase, RuntimeEvent
from gha_scalesets.scaleset.retry import RetryPolicy

log = structlog.get_logger(__name__)

# Transitional states (shutting-down, stopping) carry no news the final state does not.
_EC2_PHASES = {
    "pending": RunnerPhase.PENDING,
    "running": RunnerPhase.RUNNING,
    "terminated": RunnerPhase.STOPPED,
    "stopped": RunnerPhase.FAILED,  # an ephemeral runner that stops never comes back
}
ECS_PHASES = {  # task lastStatus before it stops
    "PROVISIONING": RunnerPhase.PENDING,
    "PENDING": RunnerPhase.PENDING,
    "ACTIVATING": RunnerPhase.PENDING,
    "RUNNING": RunnerPhase.RUNNING,
}
# Stop codes that mean the runner did not end on its own terms.
_ECS_FAILED_STOP_CODES = frozenset({"TaskFailedToStart", "SpotInterruption", "TerminationNotice"})


def parse_ec2_event(event: Mapping[str, Any]) -> RuntimeEvent | None:
    """An EC2 instance event as a runtime event (runner name unknown here), or None."""
    detail = event.get("detail") or {}
    instance_id = detail.get("instance-id")
    if not isinstance(instance_id, str):
        return None
    if event.get("detail-type") == EC2_SPOT_INTERRUPTION:
        return RuntimeEvent(instance_id, RunnerPhase.FAILED, reason="spot interruption")
    if event.get("detail-type") != EC2_STATE_CHANGE:
        return None
    state = detail.get("state")
    phase = _EC2_PHASES.get(state) if isinstance(state, str) else None
    return None if phase is None else RuntimeEvent(instance_id, phase, reason=f"instance {state}")


def parse_ecs_event(event: Mapping[str, Any], started_by_prefix: str) -> RuntimeEvent | None:
    """An ECS task event of a task we started (``startedBy`` = prefix + scale set id), or None.

    The runner is unknown here (tasks started together share their overrides): the runtime
    names it from what it learned at launch, or the listener looks it up by task ARN.
    """
    if event.get("detail-type") != ECS_TASK_STATE_CHANGE:
        return None
    detail = event.get("detail") or {}
    started_by = detail.get("startedBy") or ""
    task_arn = detail.get("taskArn")
    if not started_by.startswith(started_by_prefix) or not isinstance(task_arn, str):
        return None
    try:
        scale_set_id = int(started_by[len(started_by_prefix) :])
    except ValueError:
        return None
    status = detail.get("lastStatus")
    if status == "STOPPED":
        phase, reason = _ecs_stop(detail)
    elif status in ECS_PHASES:
        phase, reason = ECS_PHASES[status], f"task {status.lower()}"
    else:
        return None
    return RuntimeEvent(task_arn, phase, None, scale_set_id, reason)


def _ecs_stop(detail: Mapping[str, Any]) -> tuple[RunnerPhase, str]:
    stop_code = detail.get("stopCode") or ""
    reason = detail.get("stoppedReason") or stop_code or "task stopped"
    exit_codes = [c.get("exitCode") for c in detail.get("containers") or []]
    crashed = any(code not in (None, 0) for code in exit_codes)
    if stop_code in _ECS_FAILED_STOP_CODES or crashed:
        return RunnerPhase.FAILED, reason
    return RunnerPhase.STOPPED, reason


class EventQueue:
    """Long-polls one SQS queue and yields the EventBridge events it holds.

    A batch is deleted from the queue only after all its events were consumed, so a crash
    in between redelivers them (the consumers tolerate repeats). Undecodable messages are
    deleted and counted as ``malformed``.
    """

    def __init__(
        self,
        client: BaseClient,
        queue_url: str,
        retry: RetryPolicy,
        *,
        wait_seconds: int = 20,
    ) -> None:
        self._client = client
        self._queue_url = queue_url
        self._retry = retry
        self._wait_seconds = wait_seconds
        self.stats: Counter[str] = Counter()

    async def drain(self, closed: asyncio.Event) -> AsyncIterator[Mapping[str, Any]]:
        """Events until ``closed`` is set; receive failures are logged and retried."""
        failures = 0
        while not closed.is_set():
            try:
                messages = await self._receive(closed)
            except AWS_ERRORS as exc:
                failures += 1
                log.error(
                    "could not receive events from the queue",
                    queue_url=self._queue_url,
                    error=error_code(exc),
                    hint="check that the queue exists and the listener may sqs:ReceiveMessage",
                )
                await _wait(closed, self._retry.backoff(min(failures, 10)))
                continue
            failures = 0
            for message in messages:
                event = _decode(message.get("Body", ""))
                if event is None:
                    self.stats["malformed"] += 1
                    continue
                self.stats["received"] += 1
                yield event
            await self._delete(messages)

    async def _receive(self, closed: asyncio.Event) -> list[dict[str, Any]]:
        receive = asyncio.ensure_future(
            call(
                self._client,
                "receive_message",
                self._retry,
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=self._wait_seconds,
            )
        )
        stop = asyncio.ensure_future(closed.wait())
        await asyncio.wait({receive, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not receive.done():
            # The abandoned long poll ends in its thread; what it got becomes visible again.
            receive.cancel()
            return []
        messages: list[dict[str, Any]] = receive.result().get("Messages", [])
        return messages

    async def _delete(self, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        try:
            await call(
                self._client,
                "delete_message_batch",
                self._retry,
                QueueUrl=self._queue_url,
                Entries=entries,
            )
        except AWS_ERRORS as exc:
            # Undeleted messages come back after the visibility timeout: repeats, not losses.
            log.warning(
                "could not delete events from the queue", count=len(entries), error=error_code(exc)
            )


def _decode(body: str) -> Mapping[str, Any] | None:
    try:
        event = json.loads(body)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


async def _wait(closed: asyncio.Event, seconds: float) -> None:
    """Sleep up to ``seconds``, waking early when ``closed`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(closed.wait(), timeout=seconds)
