"""What goes on the wire: paths, queries, headers and bodies as the reference prescribes."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import httpx

from gha_scalesets.scaleset import ApiError, RateLimitedError, ScaleSetNotFoundError
from gha_scalesets.scaleset.errors import error_from_response
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT
from tests.support.github import ClientFactory


async def test_requests_follow_the_wire_contract(
    sim: SimulatorServer, make_client: ClientFactory
) -> None:
    sent: list[httpx.Request] = []

    async def capture(request: httpx.Request) -> None:
        sent.append(request)

    def find(method: str, needle: str) -> httpx.Request:
        return next(r for r in sent if r.method == method and needle in r.url.path)

    async with httpx.AsyncClient(event_hooks={"request": [capture]}) as http:
        client = make_client(
            http=http, user_agent_extra={"subsystem": "listener", "scale_set_id": 7}
        )
        created = await client.create_scale_set(name="wire", runner_group_id=1, labels=["wire"])
        await client.get_scale_set_by_name(1, "wire")
        await client.generate_jit_config(created.id, "w-1")
        session = await client.create_message_session(created.id, owner="host-1")
        await client.get_message(session, last_message_id=0, max_capacity=3)
        await client.get_message(session, last_message_id=42, max_capacity=3)
        await client.delete_message(session, 99)
        await client.acquire_jobs(session, created.id, [101, 102])

    registration = find("POST", "registration-token")
    assert registration.headers["authorization"] == f"Bearer {SIM_PAT}"
    assert registration.headers["content-type"] == "application/vnd.github.v3+json"
    assert registration.content == b""
    register = find("POST", "runner-registration")
    assert register.headers["authorization"].startswith("RemoteAuth ")
    assert register.content == (
        b'{"url":"' + sim.config_url("acme").encode() + b'","runner_event":"register"}\n'
    )

    create = find("POST", "/_apis/runtime/runnerscalesets")
    assert json.loads(create.content) == {
        "name": "wire",
        "runnerGroupId": 1,
        "labels": [{"name": "wire", "type": "System"}],
        "RunnerSetting": {"disableUpdate": True},
        "createdOn": "0001-01-01T00:00:00Z",
    }
    assert create.headers["content-type"] == "application/json"
    by_name = find("GET", "/_apis/runtime/runnerscalesets")
    assert by_name.url.query == b"api-version=6.0-preview&name=wire&runnerGroupId=1"
    jit = find("POST", "generatejitconfig")
    assert json.loads(jit.content) == {"name": "w-1", "workFolder": ""}
    session_create = find("POST", "/sessions")
    assert json.loads(session_create.content) == {
        "ownerName": "host-1",
        "sessionId": "00000000-0000-0000-0000-000000000000",
    }

    first_poll, second_poll = [
        r for r in sent if r.method == "GET" and r.url.path.endswith("/message")
    ]
    queue_token = session.message_queue_access_token.get_secret_value()
    for poll in (first_poll, second_poll):
        assert poll.headers["accept"] == "application/json; api-version=6.0-preview"
        assert poll.headers["x-scalesetmaxcapacity"] == "3"
        assert poll.headers["authorization"] == f"Bearer {queue_token}"
        assert "content-type" not in poll.headers
    assert "lastMessageId" not in dict(parse_qsl(first_poll.url.query.decode()))
    assert dict(parse_qsl(second_poll.url.query.decode()))["lastMessageId"] == "42"
    ack = find("DELETE", "/message/99")
    assert dict(parse_qsl(ack.url.query.decode()))["sessionId"] == session.session_id
    acquire = find("POST", "acquirejobs")
    assert acquire.content == b"[101,102]"
    assert acquire.headers["authorization"] == f"Bearer {queue_token}"
    assert b"api-version=6.0-preview" in acquire.url.query

    for request in sent:
        agent = json.loads(request.headers["user-agent"])
        assert agent["subsystem"] == "listener" and agent["scale_set_id"] == 7
        assert agent["kind"] == "scaleset"


def test_error_identifiers_are_carried() -> None:
    response = httpx.Response(
        404,
        headers={"ActivityId": "a-1", "X-GitHub-Request-Id": "r-2"},
        content=b"\xef\xbb\xbf"
        + json.dumps(
            {"TypeName": "X.RunnerScaleSetNotFoundException, X", "Message": "gone"}
        ).encode(),
    )
    error = error_from_response(response, "GET thing")
    assert isinstance(error, ScaleSetNotFoundError)
    assert (error.status, error.message, error.activity_id, error.request_id) == (
        404,
        "gone",
        "a-1",
        "r-2",
    )
    assert "ActivityId=a-1" in str(error) and "X-GitHub-Request-Id=r-2" in str(error)


def test_error_bodies_of_every_shape() -> None:
    plain = error_from_response(
        httpx.Response(500, headers={"Content-Type": "text/plain"}, content=b"boom"), "op"
    )
    assert type(plain) is ApiError and plain.message == "boom"
    empty = error_from_response(httpx.Response(502), "op")
    assert empty.message == "unknown error"
    limited = error_from_response(
        httpx.Response(403, headers={"X-RateLimit-Remaining": "0"}, json={"message": "slow"}),
        "op",
        retry_after=12,
    )
    assert isinstance(limited, RateLimitedError) and limited.retry_after == 12


async def test_an_update_sends_the_whole_desired_scale_set(
    sim: SimulatorServer, make_client: ClientFactory
) -> None:
    patches: list[httpx.Request] = []

    async def capture(request: httpx.Request) -> None:
        if request.method == "PATCH":
            patches.append(request)

    async with httpx.AsyncClient(event_hooks={"request": [capture]}) as http:
        client = make_client(http=http)
        created = await client.create_scale_set(
            name="whole", runner_group_id=1, labels=["whole", "fast"]
        )
        renamed = await client.update_scale_set(created.id, name="whole-2")
        await client.update_scale_set(created.id, disable_update=False)

    # read, change, send: nothing relies on the service merging omitted fields
    assert [json.loads(p.content) for p in patches] == [
        {
            "name": "whole-2",
            "runnerGroupId": 1,
            "labels": [{"name": "whole-2", "type": "System"}, {"name": "fast", "type": "System"}],
            "RunnerSetting": {"disableUpdate": True},
            "createdOn": "0001-01-01T00:00:00Z",
        },
        {
            "name": "whole-2",
            "runnerGroupId": 1,
            "labels": [{"name": "whole-2", "type": "System"}, {"name": "fast", "type": "System"}],
            "RunnerSetting": {"disableUpdate": False},
            "createdOn": "0001-01-01T00:00:00Z",
        },
    ]
    assert [label.name for label in renamed.labels] == ["whole-2", "fast"]
