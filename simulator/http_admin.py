"""The Actions service admin API (reference section 4, rows 1-13 and 17).

Served under the tenant's admin base URL, ``/_services/pipelines/{tenant}/``, which
runner-registration returns; stats keys leave that prefix out
(``"GET /_apis/runtime/runnerscalesets/{id}"``). Every call needs the tenant's admin JWT and
``api-version=6.0-preview`` in the query (parsed by key, any order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gha_scalesets.simulator import errors, wire
from gha_scalesets.simulator.errors import VssError
from gha_scalesets.simulator.model import JobState, Session, Tenant
from gha_scalesets.simulator.routing import Endpoint, Handler, bearer, int_param, json_body

if TYPE_CHECKING:
    from gha_scalesets.simulator.app import Simulator

ADMIN_PREFIX = "/_services/pipelines/{tenant}"
API_VERSION = "6.0-preview"
_SETS = f"{ADMIN_PREFIX}/_apis/runtime/runnerscalesets"
_AGENTS = f"{ADMIN_PREFIX}/_apis/distributedtask/pools/0/agents"


def _invalid(message: str) -> VssError:
    return VssError(400, errors.INVALID_REQUEST, message)


def require_api_version(request: Request) -> None:
    if request.query_params.get("api-version") != API_VERSION:
        raise _invalid(f"The query must carry api-version={API_VERSION}.")


def admin_base(request: Request) -> str:
    return f"{request.base_url}_services/pipelines/{request.path_params['tenant']}/"


def queue_url(sim: Simulator, request: Request, session: Session) -> str:
    if sim.faults.take_empty_queue_url():
        return ""
    return f"{request.base_url}_services/broker/message?sessionId={session.id}"


def _caller(sim: Simulator, request: Request) -> tuple[Tenant, str]:
    """The tenant of the admin token and the credential it was issued to."""
    missing = VssError(401, errors.UNAUTHORIZED, "An admin token is required.")
    tenant_id = request.path_params["tenant"]
    credential = sim.world.auth.verify_admin_token(bearer(request, missing), tenant_id)
    tenant = sim.world.tenants.get(tenant_id)
    if tenant is None:
        raise missing
    require_api_version(request)
    return tenant, credential


def _tenant(sim: Simulator, request: Request) -> Tenant:
    return _caller(sim, request)[0]


async def _object_body(request: Request) -> dict[str, Any]:
    body = await json_body(request, _invalid)
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.")
    return body


def _listing(items: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"count": len(items), "value": items})


def _no_content() -> Response:
    return Response(status_code=204)


async def runner_groups(sim: Simulator, request: Request) -> Response:
    _tenant(sim, request)
    groups = sim.world.find_groups(request.query_params.get("groupName"))
    return _listing(
        [
            {
                "id": g.id,
                "name": g.name,
                "size": sim.world.group_size(g),
                "isDefaultGroup": g.is_default,
            }
            for g in groups
        ]
    )


async def list_scale_sets(sim: Simulator, request: Request) -> Response:
    tenant = _tenant(sim, request)
    group_id = int_param(request.query_params.get("runnerGroupId"), "runnerGroupId", _invalid)
    found = sim.world.find_scale_sets(tenant, group_id, request.query_params.get("name"))
    return _listing([wire.scale_set(ss, admin_base(request)) for ss in found])


async def get_scale_set(sim: Simulator, request: Request) -> Response:
    ss = sim.world.scale_set(_tenant(sim, request), request.path_params["id"])
    return JSONResponse(wire.scale_set(ss, admin_base(request)))


async def create_scale_set(sim: Simulator, request: Request) -> Response:
    tenant = _tenant(sim, request)
    ss = sim.world.create_scale_set(tenant, await _object_body(request))
    return JSONResponse(wire.scale_set(ss, admin_base(request)), status_code=200)


async def update_scale_set(sim: Simulator, request: Request) -> Response:
    tenant = _tenant(sim, request)
    body = await _object_body(request)
    ss = sim.world.update_scale_set(tenant, request.path_params["id"], body)
    return JSONResponse(wire.scale_set(ss, admin_base(request)))


async def delete_scale_set(sim: Simulator, request: Request) -> Response:
    sim.world.delete_scale_set(_tenant(sim, request), request.path_params["id"])
    return _no_content()


async def generate_jit_config(sim: Simulator, request: Request) -> Response:
    tenant = _tenant(sim, request)
    body = await _object_body(request)
    base = str(request.base_url).rstrip("/")
    runner, jit = sim.world.generate_jit(
        tenant, request.path_params["id"], wire.get_ci(body, "name"), base
    )
    return JSONResponse({"runner": wire.runner(runner), "encodedJITConfig": jit.encode()})


async def get_agent(sim: Simulator, request: Request) -> Response:
    runner = sim.world.runner(_tenant(sim, request), request.path_params["id"])
    return JSONResponse(wire.runner(runner))


async def list_agents(sim: Simulator, request: Request) -> Response:
    tenant = _tenant(sim, request)
    found = sim.world.find_runners(tenant, request.query_params.get("agentName"))
    return _listing([wire.runner(r) for r in found])


async def delete_agent(sim: Simulator, request: Request) -> Response:
    sim.world.delete_runner(_tenant(sim, request), request.path_params["id"])
    return _no_content()


async def create_session(sim: Simulator, request: Request) -> Response:
    tenant, credential = _caller(sim, request)
    body = await _object_body(request)
    owner = wire.get_ci(body, "ownerName")
    if not isinstance(owner, str) or not owner:
        raise _invalid("The session needs a non-empty 'ownerName'.")
    session = sim.world.create_session(tenant, request.path_params["id"], owner, credential)
    return JSONResponse(
        wire.session(session, admin_base(request), queue_url(sim, request, session))
    )


async def refresh_session(sim: Simulator, request: Request) -> Response:
    tenant, credential = _caller(sim, request)
    params = request.path_params
    session = sim.world.refresh_session(tenant, params["id"], params["session_id"], credential)
    return JSONResponse(
        wire.session(session, admin_base(request), queue_url(sim, request, session))
    )


async def delete_session(sim: Simulator, request: Request) -> Response:
    params = request.path_params
    sim.world.delete_session(_tenant(sim, request), params["id"], params["session_id"])
    return _no_content()


async def acquirable_jobs(sim: Simulator, request: Request) -> Response:
    ss = sim.world.scale_set(_tenant(sim, request), request.path_params["id"])
    offered = [j for j in ss.jobs.values() if j.state is JobState.AVAILABLE]
    if not offered:
        return _no_content()
    acquire_url = f"{admin_base(request)}_apis/runtime/runnerscalesets/{ss.id}/acquirejobs"
    return _listing(
        [wire.job_message("JobAvailable", j, acquireJobUrl=acquire_url) for j in offered]
    )


def _admin(method: str, path: str, handler: Handler) -> Endpoint:
    return Endpoint(method, path, handler, "github", prefix=ADMIN_PREFIX)


ROUTES = [
    _admin("GET", f"{ADMIN_PREFIX}/_apis/runtime/runnergroups/", runner_groups),
    _admin("GET", _SETS, list_scale_sets),
    _admin("GET", f"{_SETS}/{{id:int}}", get_scale_set),
    _admin("POST", _SETS, create_scale_set),
    _admin("PATCH", f"{_SETS}/{{id:int}}", update_scale_set),
    _admin("DELETE", f"{_SETS}/{{id:int}}", delete_scale_set),
    _admin("POST", f"{_SETS}/{{id:int}}/generatejitconfig", generate_jit_config),
    _admin("GET", f"{_AGENTS}/{{id:int}}", get_agent),
    _admin("GET", _AGENTS, list_agents),
    _admin("DELETE", f"{_AGENTS}/{{id:int}}", delete_agent),
    _admin("POST", f"{_SETS}/{{id:int}}/sessions", create_session),
    _admin("PATCH", f"{_SETS}/{{id:int}}/sessions/{{session_id}}", refresh_session),
    _admin("DELETE", f"{_SETS}/{{id:int}}/sessions/{{session_id}}", delete_session),
    _admin("GET", f"{_SETS}/{{id:int}}/acquirablejobs", acquirable_jobs),
]
