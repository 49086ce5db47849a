"""GitHub REST API (GHES layout, under ``/api/v3``): the first half of the auth chain.

- ``POST /api/v3/app/installations/{id}/access_tokens`` (App JWT) -> 201 installation token
- ``POST /api/v3/{repos/{owner}/{repo}|orgs/{org}|enterprises/{enterprise}}/actions/runners/
  registration-token`` (PAT or installation token) -> 201 registration token
- ``POST /api/v3/actions/runner-registration`` (``RemoteAuth <registration token>``) -> 200
  ``{url, token}``: the tenant's admin base URL and an admin JWT.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gha_scalesets.simulator.errors import RestError
from gha_scalesets.simulator.model import Scope
from gha_scalesets.simulator.routing import Endpoint, bearer, json_body
from gha_scalesets.simulator.wire import rest_time

if TYPE_CHECKING:
    from gha_scalesets.simulator.app import Simulator

_NO_AUTH = RestError(401, "Requires authentication")
_INSTALLATION_PERMISSIONS = {
    "administration": "write",
    "organization_self_hosted_runners": "write",
    "metadata": "read",
}


def admin_base_url(request: Request, tenant_id: str) -> str:
    return f"{request.base_url}_services/pipelines/{tenant_id}/"


async def access_tokens(sim: Simulator, request: Request) -> Response:
    app = sim.world.auth.verify_app_jwt(bearer(request, _NO_AUTH))
    if request.path_params["id"] != app.installation_id:
        raise RestError(404, "Not Found: the App has no such installation")
    token, expires = sim.world.auth.issue_installation_token(app)
    body = {
        "token": token,
        "expires_at": rest_time(expires),
        "permissions": _INSTALLATION_PERMISSIONS,
        "repository_selection": "all",
    }
    return JSONResponse(body, status_code=201)


async def registration_token(sim: Simulator, request: Request) -> Response:
    params = request.path_params
    if "enterprise" in params:
        scope = Scope("enterprise", params["enterprise"].lower())
    elif "org" in params:
        scope = Scope("org", params["org"].lower())
    else:
        scope = Scope("repo", f"{params['owner']}/{params['repo']}".lower())
    credential = sim.world.auth.check_rest_credential(bearer(request, _NO_AUTH), scope)
    token, expires = sim.world.auth.issue_registration_token(scope, credential)
    return JSONResponse({"token": token, "expires_at": rest_time(expires)}, status_code=201)


async def runner_registration(sim: Simulator, request: Request) -> Response:
    granted, credential = sim.world.auth.verify_registration_token(
        bearer(request, _NO_AUTH, scheme="RemoteAuth")
    )
    body = await json_body(request, lambda message: RestError(400, message))
    url = body.get("url") if isinstance(body, dict) else None
    if not isinstance(url, str):
        raise RestError(400, "the body needs 'url': the config URL")
    try:
        scope = Scope.from_config_url(url)
    except ValueError as exc:
        raise RestError(400, str(exc)) from None
    if scope != granted:
        raise RestError(401, f"the registration token is not valid for {scope}")
    tenant = sim.world.tenant_for(scope)
    body = {
        "url": admin_base_url(request, tenant.id),
        "token": sim.world.auth.issue_admin_token(tenant.id, credential),
        "token_schema": "OAuthAccessToken",
    }
    return JSONResponse(body, status_code=200)


_REG = "actions/runners/registration-token"
ROUTES = [
    Endpoint(
        "POST",
        "/api/v3/app/installations/{id:int}/access_tokens",
        access_tokens,
        "github",
    ),
    Endpoint("POST", f"/api/v3/repos/{{owner}}/{{repo}}/{_REG}", registration_token, "github"),
    Endpoint("POST", f"/api/v3/orgs/{{org}}/{_REG}", registration_token, "github"),
    Endpoint("POST", f"/api/v3/enterprises/{{enterprise}}/{_REG}", registration_token, "github"),
    Endpoint("POST", "/api/v3/actions/runner-registration", runner_registration, "github"),
]
