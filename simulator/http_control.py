"""Control and observation API (ours, snake_case, under ``/_sim/``; never counted or faulted).

- ``POST /_sim/jobs`` ``{"labels": [...], "count": n, "duration_seconds": s,
  "repository": "owner/repo", "result": "succeeded"}`` -> ``{"job_ids": [...]}``
- ``GET /_sim/jobs`` -> ``{"jobs": [{"job_id", "state", "scale_set_id", ...}]}``
- ``GET /_sim/stats`` -> ``{"requests", "runner_requests", "limits", "revoked_credentials",
  "jobs", "runners", "monotonic"}`` (``monotonic``: when the counts were read); ``limits``
  counts per credential and route class: ``requests`` admitted, ``refused``,
  ``refused_in_block`` (sent while already limited), ``blocked_seconds``
- ``POST /_sim/reset`` -> a fresh world (faults are kept, their random stream restarts)
- ``GET|POST /_sim/faults`` -> the current :class:`~simulator.faults.FaultSettings`;
  POST replaces them all (``{}`` clears)
- ``GET|POST /_sim/limits`` -> the current :class:`~simulator.limits.LimitSettings`; POST
  replaces them and restarts every counter and block (``{}`` turns limits off)
- ``POST /_sim/credentials/revoke`` ``{"credential": "pat:<digest>" | "app:<client id>"}``:
  that PAT or App and the tokens derived from it answer 401 from now on (until a reset)
- ``GET|POST /_sim/clock`` ``{"advance_seconds": s}`` -> ``{"now": epoch seconds}``
- ``GET /_sim/routes`` -> ``{"github": [route keys]}``: what ``faults.routes`` may name
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gha_scalesets.simulator.errors import PlainError
from gha_scalesets.simulator.faults import FaultSettings
from gha_scalesets.simulator.limits import LimitSettings
from gha_scalesets.simulator.routing import Endpoint, Handler, json_body

if TYPE_CHECKING:
    from gha_scalesets.simulator.app import Simulator


M = TypeVar("M", bound=BaseModel)


class QueueJobs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: list[str] = Field(min_length=1)
    count: int = Field(1, ge=1, le=100_000)
    duration_seconds: float = Field(0.1, ge=0)
    repository: str = Field("acme/app", pattern=r"^[^/\s]+/[^/\s]+$")
    result: Literal["succeeded", "failed", "canceled", "skipped"] = "succeeded"


class Revoke(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credential: str = Field(pattern=r"^(pat|app):.+$")


class AdvanceClock(BaseModel):
    model_config = ConfigDict(extra="forbid")

    advance_seconds: float = Field(ge=0)


async def _parse(request: Request, model: type[M]) -> M:
    body = await json_body(request)
    try:
        return model.model_validate(body if body is not None else {})
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise PlainError(400, f"invalid {model.__name__} request: {details}") from None


async def queue_jobs(sim: Simulator, request: Request) -> Response:
    spec = await _parse(request, QueueJobs)
    jobs = sim.world.jobs.queue(
        spec.labels, spec.count, spec.duration_seconds, spec.repository, spec.result
    )
    return JSONResponse({"job_ids": [job.request_id for job in jobs]})


async def list_jobs(sim: Simulator, request: Request) -> Response:
    return JSONResponse({"jobs": [job.summary() for job in sim.world.jobs.jobs.values()]})


async def stats(sim: Simulator, request: Request) -> Response:
    return JSONResponse(sim.stats())


async def reset(sim: Simulator, request: Request) -> Response:
    sim.reset()
    return Response(status_code=204)


async def get_faults(sim: Simulator, request: Request) -> Response:
    return JSONResponse(sim.faults.settings.model_dump())


async def set_faults(sim: Simulator, request: Request) -> Response:
    settings = await _parse(request, FaultSettings)
    try:
        sim.faults.configure(settings)
    except ValueError as exc:
        raise PlainError(400, str(exc)) from None
    return JSONResponse(settings.model_dump())


async def get_limits(sim: Simulator, request: Request) -> Response:
    return JSONResponse(sim.limits.settings.model_dump())


async def set_limits(sim: Simulator, request: Request) -> Response:
    settings = await _parse(request, LimitSettings)
    sim.limits.configure(settings)
    return JSONResponse(settings.model_dump())


async def revoke(sim: Simulator, request: Request) -> Response:
    sim.world.auth.revoke((await _parse(request, Revoke)).credential)
    return Response(status_code=204)


async def clock(sim: Simulator, request: Request) -> Response:
    if request.method == "POST":
        sim.clock.advance((await _parse(request, AdvanceClock)).advance_seconds)
    return JSONResponse({"now": sim.clock.now()})


async def routes(sim: Simulator, request: Request) -> Response:
    return JSONResponse({"github": sorted(sim.github_routes)})


def _control(method: str, path: str, handler: Handler) -> Endpoint:
    return Endpoint(method, f"/_sim{path}", handler, "control")


ROUTES = [
    _control("POST", "/jobs", queue_jobs),
    _control("GET", "/jobs", list_jobs),
    _control("GET", "/stats", stats),
    _control("POST", "/reset", reset),
    _control("GET", "/faults", get_faults),
    _control("POST", "/faults", set_faults),
    _control("GET", "/limits", get_limits),
    _control("POST", "/limits", set_limits),
    _control("POST", "/credentials/revoke", revoke),
    _control("GET", "/clock", clock),
    _control("POST", "/clock", clock),
    _control("GET", "/routes", routes),
]
