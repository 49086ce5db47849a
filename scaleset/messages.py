"""Message-queue envelope and the job messages it carries."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ConfigDict, Field

from gha_scalesets.scaleset.errors import ProtocolError
from gha_scalesets.scaleset.models import Statistics
from gha_scalesets.scaleset.wire import WireModel, WireTime, decode_json

JOB_MESSAGES_TYPE = "RunnerScaleSetJobMessages"


class JobMessage(WireModel):
    """Fields shared by every job message."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    message_type: str = ""
    runner_request_id: int = 0
    job_id: str | None = None
    repository_name: str = ""
    owner_name: str = ""
    job_workflow_ref: str = ""
    job_display_name: str = ""
    workflow_run_id: int = 0
    event_name: str = ""
    request_labels: list[str] = Field(default_factory=list)
    queue_time: WireTime = None
    scale_set_assign_time: WireTime = None
    runner_assign_time: WireTime = None
    finish_time: WireTime = None


class JobAvailable(JobMessage):
    """A job offered to the scale set; it must be acquired (GHES) via ``acquire_jobs``."""

    acquire_job_url: str = ""


class JobAssigned(JobMessage):
    """A job assigned to the scale set by the service."""


class JobStarted(JobMessage):
    """A runner picked up a job."""

    runner_id: int = 0
    runner_name: str = ""


class JobCompleted(JobMessage):
    """A job finished, or its assignment was cancelled (then the runner fields are empty)."""

    result: str = ""
    runner_id: int = 0
    runner_name: str = ""


_JOB_TYPES: dict[str, type[JobMessage]] = {
    cls.__name__.lower(): cls for cls in (JobAvailable, JobAssigned, JobStarted, JobCompleted)
}


class ScaleSetMessage(WireModel):
    """One message-queue message: latest statistics plus up to 50 job messages."""

    message_id: int
    message_type: str
    statistics: Statistics | None = None
    jobs: list[JobMessage] = Field(default_factory=list)


class _Envelope(WireModel):
    message_id: int
    message_type: str = ""
    body: str | None = None
    statistics: Statistics | None = None


def _parse_jobs(body: str | None) -> list[JobMessage]:
    if not body:
        return []
    try:
        items: Any = json.loads(body)
    except ValueError:
        raise ProtocolError("get message: the body is not a JSON array of job messages") from None
    if not isinstance(items, list):
        raise ProtocolError("get message: the body is not a JSON array of job messages")
    jobs: list[JobMessage] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = next((v for k, v in item.items() if k.lower() == "messagetype"), "")
        cls = _JOB_TYPES.get(str(kind).lower())
        if cls is not None:  # unknown job message types are skipped, as upstream does
            jobs.append(cls.from_wire(item, f"job message {kind}"))
    return jobs


def parse_message(raw: bytes) -> ScaleSetMessage:
    """Decode a GET-message 200 body (BOM tolerated) into a :class:`ScaleSetMessage`."""
    envelope = _Envelope.from_wire(decode_json(raw, "get message"), "get message")
    if envelope.message_type != JOB_MESSAGES_TYPE:
        raise ProtocolError(
            f"get message: unsupported message type {envelope.message_type!r} "
            f"(expected {JOB_MESSAGES_TYPE!r})"
        )
    return ScaleSetMessage(
        message_id=envelope.message_id,
        message_type=envelope.message_type,
        statistics=envelope.statistics,
        jobs=_parse_jobs(envelope.body),
    )
