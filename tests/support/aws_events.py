"""EventBridge events shaped exactly like AWS sends them, and helpers to queue them.

moto's EventBridge does not reliably deliver to SQS targets, so the tests put the events
into the SQS queue themselves, as the EventBridge rule's SQS target would (body = the event).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
_TIME = "2024-05-01T12:00:00Z"


def _envelope(
    detail_type: str, source: str, resources: list[str], detail: dict[str, Any]
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": _TIME,
        "region": REGION,
        "resources": resources,
        "detail": detail,
    }


def ec2_state_event(instance_id: str, state: str) -> dict[str, Any]:
    """An "EC2 Instance State-change Notification"."""
    return _envelope(
        "EC2 Instance State-change Notification",
        "aws.ec2",
        [f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance_id}"],
        {"instance-id": instance_id, "state": state},
    )


def ec2_spot_warning(instance_id: str) -> dict[str, Any]:
    """An "EC2 Spot Instance Interruption Warning"."""
    return _envelope(
        "EC2 Spot Instance Interruption Warning",
        "aws.ec2",
        [f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance_id}"],
        {"instance-id": instance_id, "instance-action": "terminate"},
    )


def ecs_task_event(task: Mapping[str, Any], last_status: str, **stop: Any) -> dict[str, Any]:
    """An "ECS Task State Change" for ``task`` (a RunTask/DescribeTasks task object).

    ``stop`` adds the fields of a stopped task: ``stopCode``, ``stoppedReason`` and
    ``exitCode`` (of the runner container).
    """
    exit_code = stop.pop("exitCode", None)
    containers = [
        {
            "containerArn": c.get("containerArn", ""),
            "lastStatus": last_status,
            "name": c["name"],
            "taskArn": task["taskArn"],
            **({"exitCode": exit_code} if exit_code is not None else {}),
        }
        for c in task.get("containers", [])
    ]
    detail = {
        "clusterArn": task["clusterArn"],
        "taskArn": task["taskArn"],
        "taskDefinitionArn": task["taskDefinitionArn"],
        "group": task.get("group", ""),
        "startedBy": task.get("startedBy", ""),
        "launchType": task.get("launchType", "FARGATE"),
        "lastStatus": last_status,
        "desiredStatus": "STOPPED" if last_status == "STOPPED" else "RUNNING",
        "overrides": task.get("overrides", {}),
        "containers": containers,
        "createdAt": _TIME,
        "updatedAt": _TIME,
        "version": 2,
        **stop,
    }
    return _envelope("ECS Task State Change", "aws.ecs", [task["taskArn"]], detail)


def ecs_task_exited(task: Mapping[str, Any], exit_code: int) -> dict[str, Any]:
    """A STOPPED event of ``task`` whose runner container exited with ``exit_code``."""
    return ecs_task_event(
        task,
        "STOPPED",
        stopCode="EssentialContainerExited",
        stoppedReason="Essential container in task exited",
        exitCode=exit_code,
    )


def send_events(sqs: Any, queue_url: str, events: Iterable[Mapping[str, Any] | str]) -> None:
    """Queue events (a str is sent as is: a malformed body)."""
    bodies = [e if isinstance(e, str) else json.dumps(e) for e in events]
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])
        ]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Visible plus in-flight messages."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )
