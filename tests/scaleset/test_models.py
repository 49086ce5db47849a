"""Wire models: case-insensitive decoding, BOM, exact casing, job messages, secret hiding."""

import json

import pytest

from gha_scalesets.scaleset import (
    AppCredentials,
    JitConfigResult,
    JobAvailable,
    JobCompleted,
    JobStarted,
    MessageSession,
    PatCredentials,
    ProtocolError,
    ScaleSet,
)
from gha_scalesets.scaleset.messages import parse_message


def test_scale_set_decodes_any_casing_and_bom() -> None:
    raw = (
        b"\xef\xbb\xbf"
        + json.dumps(
            {
                "ID": 42,
                "name": "linux",
                "RUNNERGROUPID": 1,
                "runnerGroupName": "Default",
                "Labels": [{"NAME": "linux"}],
                "runnerSetting": {"DisableUpdate": True},
                "createdOn": "2026-01-01T00:00:00.1234567Z",
                "statistics": {"TotalAssignedJobs": 3},
            }
        ).encode()
    )
    scale_set = ScaleSet.from_bytes(raw)
    assert (scale_set.id, scale_set.runner_group_id, scale_set.runner_group_name) == (
        42,
        1,
        "Default",
    )
    assert scale_set.labels[0].name == "linux"
    assert scale_set.labels[0].type == "System"
    assert scale_set.runner_setting.disable_update is True
    assert scale_set.statistics is not None
    assert scale_set.statistics.total_assigned_jobs == 3
    assert scale_set.created_on is not None
    assert scale_set.created_on.microsecond == 123456


def test_encoding_uses_exact_wire_casing() -> None:
    wire = ScaleSet(id=1, name="x", runner_group_id=2).to_wire(exclude_none=True)
    assert "RunnerSetting" in wire
    assert wire["runnerGroupId"] == 2
    assert wire["RunnerSetting"] == {"disableUpdate": False}


@pytest.mark.parametrize("raw", [b"", b"   ", b"\xef\xbb\xbf", b"{not json", b"[1]"])
def test_bad_bodies_are_protocol_errors(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        ScaleSet.from_bytes(raw)


def test_message_envelope_parses_job_messages_and_skips_unknown_types() -> None:
    jobs = [
        {"messageType": "JobAvailable", "runnerRequestId": 7, "acquireJobUrl": "u"},
        {"messageType": "SomethingNew", "runnerRequestId": 8},
        {"MESSAGETYPE": "JobStarted", "runnerId": 4, "runnerName": "r-1", "jobId": 99},
        {
            "messageType": "JobCompleted",
            "result": "canceled",
            "runnerAssignTime": "0001-01-01T00:00:00Z",
            "finishTime": "2026-01-02T03:04:05Z",
        },
    ]
    raw = json.dumps(
        {
            "messageId": 100000171,
            "messageType": "RunnerScaleSetJobMessages",
            "body": json.dumps(jobs),
            "statistics": {"totalAssignedJobs": 2},
        }
    ).encode()
    message = parse_message(b"\xef\xbb\xbf" + raw)
    assert message.message_id == 100000171
    assert [type(j) for j in message.jobs] == [JobAvailable, JobStarted, JobCompleted]
    available, started, completed = message.jobs
    assert isinstance(available, JobAvailable) and available.acquire_job_url == "u"
    assert isinstance(started, JobStarted) and started.runner_name == "r-1"
    assert started.job_id == "99"
    assert isinstance(completed, JobCompleted) and completed.result == "canceled"
    assert completed.runner_assign_time is None  # Go zero time
    assert completed.finish_time is not None and completed.finish_time.year == 2026


def test_message_with_empty_body_has_no_jobs_and_other_types_are_rejected() -> None:
    raw = json.dumps({"messageId": 1, "messageType": "RunnerScaleSetJobMessages", "body": ""})
    assert parse_message(raw.encode()).jobs == []
    other = json.dumps({"messageId": 1, "messageType": "Surprise", "body": ""})
    with pytest.raises(ProtocolError, match="unsupported message type"):
        parse_message(other.encode())
    with pytest.raises(ProtocolError, match="empty body"):
        parse_message(b"")


def test_secrets_are_hidden_from_reprs(rsa_pem: str) -> None:
    session = MessageSession.from_wire(
        {"sessionId": "s", "messageQueueUrl": "http://q", "messageQueueAccessToken": "mq-SECRET"}
    )
    result = JitConfigResult(name="r", config="JIT-SECRET")
    pat = PatCredentials("ghp_SECRET")
    app = AppCredentials("Iv1.abc", 12, rsa_pem)
    rendered = " ".join(
        [repr(session), str(session), repr(result), str(result), repr(pat), repr(app)]
    )
    for secret in ("mq-SECRET", "JIT-SECRET", "ghp_SECRET", "PRIVATE KEY"):
        assert secret not in rendered
    assert session.message_queue_access_token.get_secret_value() == "mq-SECRET"
