"""The message queue (rows 14-15) and job acquisition (row 16), authorised by the session's
message-queue token.

The queue URL handed out by session create/refresh is
``{base}/_services/broker/message?sessionId=<uuid>``; the ack is ``DELETE`` on that path plus
``/{messageId}`` with the query kept. Stats keys: ``"GET /message"``, ``"DELETE
/message/{id}"``. ``acquirejobs`` lives under the admin prefix but takes the queue token.

GET holds the request up to ``long_poll_seconds`` waiting for job events, then answers 202.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gha_scalesets.simulator import errors, wire
from gha_scalesets.simulator.errors import PlainError, VssError
from gha_scalesets.simulator.http_admin import ADMIN_PREFIX, API_VERSION, require_api_version
from gha_scalesets.simulator.model import Session
from gha_scalesets.simulator.routing import Endpoint, bearer, int_param, json_body

if TYPE_CHECKING:
    from gha_scalesets.simulator.app import Simulator

BROKER_PREFIX = "/_services/broker"
UNLIMITED_CAPACITY = 2**31 - 1
_NO_TOKEN = PlainError(401, "A message queue token is required.")


def _bad(message: str) -> PlainError:
    return PlainError(400, message)


def _session(sim: Simulator, request: Request, *, check_query: bool) -> Session:
    if sim.faults.take_mq_unauthorized():
        raise PlainError(401, "The message queue token is invalid or expired (injected).")
    session = sim.world.session_for_mq_token(bearer(request, _NO_TOKEN))
    if check_query:
        given = request.query_params.get("sessionId")
        if given is None:
            raise _bad("The sessionId query parameter of the message queue URL is missing.")
        if given != session.id:
            raise PlainError(401, "The token does not belong to this message queue.")
    if session.scale_set.deleted:
        raise VssError(
            404, errors.SCALE_SET_NOT_FOUND, "The runner scale set of this session was deleted."
        )
    return session


def _absolute_urls(request: Request, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    base = str(request.base_url)
    return [
        {**e, "acquireJobUrl": base + e["acquireJobUrl"]} if "acquireJobUrl" in e else e
        for e in events
    ]


async def get_message(sim: Simulator, request: Request) -> Response:
    session = _session(sim, request, check_query=True)
    if f"api-version={API_VERSION}" not in request.headers.get("accept", ""):
        raise _bad(f"The Accept header must carry api-version={API_VERSION}.")
    last_id = int_param(request.query_params.get("lastMessageId"), "lastMessageId", _bad) or 0
    capacity = int_param(
        request.headers.get("x-scalesetmaxcapacity"), "X-ScaleSetMaxCapacity", _bad
    )
    if capacity is not None and capacity < 0:
        raise _bad("X-ScaleSetMaxCapacity must not be negative.")
    if sim.faults.empty_body():
        return Response(b"", status_code=200, media_type="application/json")
    world, ss = sim.world, session.scale_set
    loop_deadline = sim.loop_time() + sim.config.long_poll_seconds
    with world.polling(session):
        session.max_capacity = UNLIMITED_CAPACITY if capacity is None else capacity
        world.jobs.dispatch()
        while True:
            if ss.deleted:
                raise VssError(404, errors.SCALE_SET_NOT_FOUND, "The runner scale set was deleted.")
            if ss.session is not session:
                return Response(status_code=202)
            message = ss.queue.next_message(last_id, world.new_message_id)
            if message is not None:
                events = _absolute_urls(request, message.events)
                return JSONResponse(wire.envelope(message.id, events, ss.statistics()))
            remaining = loop_deadline - sim.loop_time()
            if remaining <= 0 or not await ss.signal.wait(remaining):
                return Response(status_code=202)


async def delete_message(sim: Simulator, request: Request) -> Response:
    session = _session(sim, request, check_query=True)
    session.scale_set.queue.delete(request.path_params["id"])
    return Response(status_code=204)


async def acquire_jobs(sim: Simulator, request: Request) -> Response:
    session = _session(sim, request, check_query=False)
    require_api_version(request)
    if request.path_params["id"] != session.scale_set.id:
        raise PlainError(401, "The token does not belong to this runner scale set.")
    body = await json_body(request, _bad)
    if not isinstance(body, list) or not all(isinstance(i, int) for i in body):
        raise _bad("The body must be a JSON array of runnerRequestIds.")
    acquired = sim.world.jobs.acquire(session.scale_set, body)
    return JSONResponse({"count": len(acquired), "value": acquired})


ROUTES = [
    Endpoint("GET", f"{BROKER_PREFIX}/message", get_message, "github", prefix=BROKER_PREFIX),
    Endpoint(
        "DELETE",
        f"{BROKER_PREFIX}/message/{{id:int}}",
        delete_message,
        "github",
        prefix=BROKER_PREFIX,
    ),
    Endpoint(
        "POST",
        f"{ADMIN_PREFIX}/_apis/runtime/runnerscalesets/{{id:int}}/acquirejobs",
        acquire_jobs,
        "github",
        prefix=ADMIN_PREFIX,
    ),
]
