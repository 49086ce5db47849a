"""Route declarations and the wrapper every request goes through.

Handlers are ``async def handler(sim, request) -> Response`` and raise
:class:`~simulator.errors.ApiError` for error answers. Three kinds of routes:

- ``github``: what a real GitHub would serve. Counted under ``/_sim/stats`` ``requests`` by
  route key (``"<METHOD> <template>"``, the template without the admin/broker prefix), and
  subject to fault injection.
- ``runner``: the runner emulator's private routes, counted under ``runner_requests``.
- ``control``: ``/_sim/...`` control and observation; neither counted nor faulted.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gha_scalesets.simulator.errors import ApiError, PlainError

if TYPE_CHECKING:
    from gha_scalesets.simulator.app import Simulator
    from gha_scalesets.simulator.limits import Admission

Handler = Callable[["Simulator", Request], Awaitable[Response]]
RouteKind = Literal["github", "runner", "control"]
_CONVERTOR = re.compile(r":\w+}")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # starlette path template, convertors allowed ("{id:int}")
    handler: Handler
    kind: RouteKind
    prefix: str = ""  # leading part left out of the stats key

    @property
    def key(self) -> str:
        return f"{self.method} {_CONVERTOR.sub('}', self.path.removeprefix(self.prefix))}"

    def route(self) -> Route:
        return Route(self.path, _wrap(self), methods=[self.method])


def _wrap(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    key, handler, kind = endpoint.key, endpoint.handler, endpoint.kind

    async def serve(request: Request) -> Response:
        sim: Simulator = request.app.state.sim
        if kind != "control":
            sim.observe_caller(request)
        admission: Admission | None = None
        if kind == "github":
            sim.requests[key] += 1
            if sim.limits.active:
                caller = sim.world.auth.identify(request.headers.get("authorization", ""))
                admitted = sim.limits.admit(key, endpoint.method, caller)
                if isinstance(admitted, Response):  # refused: the handler never runs
                    await sim.faults.delay(key)  # but the answer takes a round trip
                    _tag_request_id(sim, endpoint, admitted)
                    return admitted
                admission = admitted
        elif kind == "runner":
            sim.runner_requests[key] += 1
        started = sim.loop_time()
        response: Response | None = None
        try:
            if kind == "github":
                response = await sim.faults.intercept(key)
                if response is not None:
                    return response
            try:
                response = await handler(sim, request)
            except ApiError as error:
                response = error.response()
            if kind == "github":
                sim.faults.decorate(key, response)
                _tag_request_id(sim, endpoint, response)
            return response
        finally:
            if admission is not None:  # also when the client went away mid-request
                admission.finish(sim.loop_time() - started, response)

    return serve


def _tag_request_id(sim: Simulator, endpoint: Endpoint, response: Response) -> None:
    """Request ids as GitHub sends them: ``X-GitHub-Request-Id`` on REST, ``ActivityId`` on
    the Actions service; derived from a counter so runs stay reproducible."""
    sim.request_serial += 1
    if endpoint.path.startswith("/api/v3"):
        response.headers["X-GitHub-Request-Id"] = f"SIM0:{sim.request_serial:08X}"
    else:
        response.headers["ActivityId"] = str(uuid.UUID(int=sim.request_serial))


def bearer(request: Request, error: ApiError, scheme: str = "Bearer") -> str:
    """The credential after ``scheme`` in ``Authorization``; ``error`` when absent."""
    given, _, credential = request.headers.get("authorization", "").partition(" ")
    if given.lower() != scheme.lower() or not credential.strip():
        raise error
    return credential.strip()


async def json_body(request: Request, error: Callable[[str], ApiError] | None = None) -> Any:
    """The request body as JSON (a UTF-8 BOM is tolerated)."""
    raw = (await request.body()).removeprefix(b"\xef\xbb\xbf")
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError:
        make = error or (lambda message: PlainError(400, message))
        raise make("the request body is not valid JSON") from None


def int_param(value: str | None, name: str, error: Callable[[str], ApiError]) -> int | None:
    """Parse an optional integer query parameter or header."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise error(f"{name} must be an integer, got {value!r}") from None
