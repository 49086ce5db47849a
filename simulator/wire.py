"""JSON shapes of the scale-set API with the exact casing of the reference.

Admin-API and message-queue bodies are camelCase (``RunnerSetting`` is capitalised, a
historic quirk); times are RFC 3339 with seven fractional digits like the .NET service, and
Go's zero time when unset. Request bodies are read case-insensitively, as the service does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gha_scalesets.simulator.model import Job, Runner, ScaleSet, Session, Statistics

GO_ZERO_TIME = "0001-01-01T00:00:00Z"
ENVELOPE_TYPE = "RunnerScaleSetJobMessages"


def service_time(timestamp: float | None) -> str:
    """.NET-style RFC 3339 (7 fractional digits), or Go's zero time for ``None``."""
    if timestamp is None:
        return GO_ZERO_TIME
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond * 10:07d}Z"


def rest_time(timestamp: float) -> str:
    """GitHub REST style: whole seconds, ``Z``."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def get_ci(body: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """Look ``key`` up case-insensitively."""
    wanted = key.lower()
    for name, value in body.items():
        if name.lower() == wanted:
            return value
    return default


def statistics(stats: Statistics) -> dict[str, int]:
    return {
        "totalAvailableJobs": stats.available,
        "totalAcquiredJobs": stats.acquired,
        "totalAssignedJobs": stats.assigned,
        "totalRunningJobs": stats.running,
        "totalRegisteredRunners": stats.registered,
        "totalBusyRunners": stats.busy,
        "totalIdleRunners": stats.idle,
    }


def scale_set(ss: ScaleSet, admin_base: str) -> dict[str, Any]:
    jit_url = f"{admin_base}_apis/runtime/runnerscalesets/{ss.id}/generatejitconfig"
    return {
        "id": ss.id,
        "name": ss.name,
        "runnerGroupId": ss.group.id,
        "runnerGroupName": ss.group.name,
        "labels": [dict(label) for label in ss.labels],
        "RunnerSetting": dict(ss.settings),
        "createdOn": service_time(ss.created_on),
        "runnerJitConfigUrl": jit_url,
        "statistics": statistics(ss.statistics()),
    }


def session(sess: Session, admin_base: str, queue_url: str) -> dict[str, Any]:
    return {
        "sessionId": sess.id,
        "ownerName": sess.owner,
        "runnerScaleSet": scale_set(sess.scale_set, admin_base),
        "messageQueueUrl": queue_url,
        "messageQueueAccessToken": sess.mq_token,
        "statistics": statistics(sess.scale_set.statistics()),
    }


def runner(r: Runner) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "runnerScaleSetId": r.scale_set.id}


def job_message(message_type: str, job: Job, **extra: Any) -> dict[str, Any]:
    """One element of an envelope body, a snapshot of ``job`` at emission time."""
    owner, _, repo = job.repository.partition("/")
    return {
        "messageType": message_type,
        "runnerRequestId": job.request_id,
        "repositoryName": repo,
        "ownerName": owner,
        "jobId": job.job_id,
        "jobWorkflowRef": f"{job.repository}/.github/workflows/ci.yml@refs/heads/main",
        "jobDisplayName": f"job-{job.request_id}",
        "workflowRunId": job.workflow_run_id,
        "eventName": "push",
        "requestLabels": list(job.labels),
        "queueTime": service_time(job.queue_time),
        "scaleSetAssignTime": service_time(job.scale_set_assign_time),
        "runnerAssignTime": service_time(job.runner_assign_time),
        "finishTime": service_time(job.finish_time),
        **extra,
    }


def envelope(message_id: int, events: list[dict[str, Any]], stats: Statistics) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "messageType": ENVELOPE_TYPE,
        "body": json.dumps(events, separators=(",", ":")) if events else "",
        "statistics": statistics(stats),
    }
