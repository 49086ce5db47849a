"""Every parser of untrusted input fails only with the project's typed error (hypothesis).

Wire bodies (message envelopes, job messages, sessions, scale sets, statistics, error bodies),
config URLs, listener settings, provider inputs and simulator JIT configs get arbitrary and
hostile input; anything but the documented error (or a value) is a crash that would reach users
as a bare traceback.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gha_scalesets.listener.config import ListenerSettings
from gha_scalesets.providers.inputs import check_inputs
from gha_scalesets.scaleset.config_url import parse_config_url
from gha_scalesets.scaleset.errors import (
    ApiError,
    ConfigUrlError,
    ProtocolError,
    error_from_response,
)
from gha_scalesets.scaleset.messages import parse_message
from gha_scalesets.scaleset.models import MessageSession, ScaleSet, Statistics
from gha_scalesets.simulator.jit import InvalidJitConfig, JitConfig

PROFILE = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
_WIRE_KEYS = [
    "messageId", "messageType", "body", "statistics", "runnerRequestId", "jobId", "runnerName",
    "runnerId", "result", "sessionId", "messageQueueUrl", "messageQueueAccessToken", "id",
    "name", "runnerGroupId", "labels", "totalAssignedJobs", "ownerName", "runnerScaleSet",
]  # fmt: skip
wire_objects = st.dictionaries(st.sampled_from(_WIRE_KEYS), json_values, max_size=8)
job_types = st.sampled_from(["JobAvailable", "JobAssigned", "JobStarted", "JobCompleted", "X"])
job_messages = st.lists(
    st.fixed_dictionaries(
        # messageType is required above: hypothesis rejects a key both required and optional
        {"messageType": job_types},
        optional={k: json_values for k in _WIRE_KEYS if k != "messageType"},
    ),
    max_size=4,
)


def _bodies() -> st.SearchStrategy[bytes]:
    """Raw bytes, JSON of any shape, and envelopes that are nearly right."""
    envelope = st.fixed_dictionaries(
        {
            "messageId": st.integers() | st.text(max_size=5),
            "messageType": st.just("RunnerScaleSetJobMessages") | st.text(max_size=10),
            "body": st.text(max_size=40) | job_messages.map(json.dumps) | json_values,
        },
        optional={"statistics": wire_objects | json_values},
    )
    return st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        envelope.map(lambda v: json.dumps(v).encode()),
        wire_objects.map(lambda v: json.dumps(v).encode()),
    )


@PROFILE
@given(_bodies())
def test_message_envelopes_fail_only_as_protocol_errors(raw: bytes) -> None:
    try:
        message = parse_message(raw)
    except ProtocolError as exc:
        assert str(exc).startswith(("get message", "job message")), str(exc)
    else:
        assert message.message_type == "RunnerScaleSetJobMessages"


@PROFILE
@given(_bodies(), st.sampled_from([MessageSession, ScaleSet, Statistics]))
def test_wire_models_fail_only_as_protocol_errors(raw: bytes, model: Any) -> None:
    try:
        model.from_bytes(raw, "response")
    except ProtocolError as exc:
        assert "response" in str(exc)


@PROFILE
@given(
    st.integers(min_value=400, max_value=599),
    st.binary(max_size=200) | wire_objects.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(["application/json", "text/plain", "text/html", ""]),
)
def test_error_bodies_always_become_api_errors(status: int, body: bytes, ctype: str) -> None:
    request = httpx.Request("GET", "https://example.invalid/_apis/x")
    response = httpx.Response(
        status, content=body, headers={"Content-Type": ctype}, request=request
    )
    error = error_from_response(response, "GET _apis/x")
    assert isinstance(error, ApiError) and error.status == status
    assert str(error)  # a message a human can act on, never empty


@PROFILE
@given(
    st.text(max_size=60)
    | st.builds(
        lambda scheme, host, path: f"{scheme}://{host}/{path}",
        st.sampled_from(["https", "http", "ftp", ""]),
        st.text(max_size=15),
        st.text(max_size=25),
    )
)
def test_config_urls_fail_only_as_config_url_errors(url: str) -> None:
    try:
        parsed = parse_config_url(url)
    except ConfigUrlError as exc:
        assert str(exc)
    else:
        assert parsed.url.startswith(("https://", "http://"))


@PROFILE
@given(st.dictionaries(st.sampled_from(list(ListenerSettings.model_fields)), json_values))
def test_listener_settings_fail_only_as_validation_errors(data: dict[str, Any]) -> None:
    try:
        ListenerSettings(**data)
    except ValidationError as exc:
        assert exc.errors()


_PROVIDER_KEYS = ["github_config_url", "name", "runner_group", "labels", "disable_update",
                  "github_token", "github_app"]  # fmt: skip


@PROFILE
@given(st.dictionaries(st.sampled_from(_PROVIDER_KEYS), json_values))
def test_provider_check_reports_failures_instead_of_raising(news: dict[str, Any]) -> None:
    checked = check_inputs(news)
    for prop, reason in checked.failures:
        assert prop and reason


@PROFILE
@given(
    st.text(max_size=80)
    | json_values.map(lambda v: __import__("base64").b64encode(json.dumps(v).encode()).decode())
)
def test_jit_configs_fail_only_as_invalid_jit_config(blob: str) -> None:
    try:
        JitConfig.decode(blob)
    except InvalidJitConfig as exc:
        assert "JIT config" in str(exc)
