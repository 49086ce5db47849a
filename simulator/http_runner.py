"""Private routes of the runner emulator (``/_sim/runner/{id}/...``), authorised by the
per-runner secret inside the JIT config. Counted under ``runner_requests``.

- ``POST online``: the runner configured itself from its JIT config (single use, else 409).
- ``POST acquire``: long poll for a job; 200 ``{"job_id", "duration_seconds", "result"}``
  (the service emits ``JobStarted``), 202 when none came within the hold, 404 once the runner
  was removed (the emulator then exits).
- ``POST complete`` ``{"job_id"}``: ``JobCompleted``; the ephemeral runner is deregistered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gha_scalesets.simulator.errors import PlainError
from gha_scalesets.simulator.model import Runner
from gha_scalesets.simulator.routing import Endpoint, Handler, bearer, json_body

if TYPE_CHECKING:
    from gha_scalesets.simulator.app import Simulator

RUNNER_PREFIX = "/_sim/runner/{id:int}"


def _runner(sim: Simulator, request: Request) -> Runner:
    secret = bearer(request, PlainError(401, "the runner credential is missing"))
    return sim.world.authenticate_runner(request.path_params["id"], secret)


async def online(sim: Simulator, request: Request) -> Response:
    sim.world.runner_online(_runner(sim, request))
    return Response(status_code=204)


async def acquire(sim: Simulator, request: Request) -> Response:
    runner = _runner(sim, request)
    if not runner.online:
        raise PlainError(409, f"runner {runner.name} must come online first")
    hold = sim.config.runner_hold
    deadline = sim.loop_time() + hold
    while True:
        if runner.removed:
            raise PlainError(404, f"runner {runner.name} was removed")
        if runner.job is not None:
            raise PlainError(409, f"runner {runner.name} already runs a job")
        job = sim.world.jobs.start_next(runner)
        if job is not None:
            body = {
                "job_id": job.request_id,
                "duration_seconds": job.duration,
                "result": job.result,
            }
            return JSONResponse(body)
        remaining = deadline - sim.loop_time()
        if remaining <= 0 or not await runner.scale_set.signal.wait(remaining):
            return Response(status_code=202)


async def complete(sim: Simulator, request: Request) -> Response:
    runner = _runner(sim, request)
    body = await json_body(request)
    job_id = body.get("job_id") if isinstance(body, dict) else None
    if not isinstance(job_id, int):
        raise PlainError(400, "the body needs an integer 'job_id'")
    sim.world.finish_job(runner, job_id)
    return Response(status_code=204)


def _runner_route(action: str, handler: Handler) -> Endpoint:
    return Endpoint("POST", f"{RUNNER_PREFIX}/{action}", handler, "runner")


ROUTES = [
    _runner_route("online", online),
    _runner_route("acquire", acquire),
    _runner_route("complete", complete),
]
