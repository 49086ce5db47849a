"""HTTP errors in the three dialects the simulator speaks.

- :class:`VssError`: the Actions service (admin API) style, ``{"typeName", "message", ...}``;
  clients match on ``typeName`` substrings, so the full .NET names are used.
- :class:`RestError`: the GitHub REST style, ``{"message", "documentation_url", "status"}``.
- :class:`PlainError`: the message queue and the simulator's own routes, ``{"message"}``.

Handlers raise them; the route wrapper turns them into responses.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse, Response

_DT = "GitHub.DistributedTask.WebApi"
_RT = "GitHub.Actions.Runtime.WebApi"
_SVC = "GitHub.Services.WebApi"

# Names the reference documents (section 5.1).
AGENT_EXISTS = f"{_DT}.TaskAgentExistsException, {_DT}"
AGENT_NOT_FOUND = f"{_DT}.TaskAgentNotFoundException, {_DT}"
JOB_STILL_RUNNING = f"{_DT}.TaskAgentJobStillRunningException, {_DT}"
SESSION_CONFLICT = f"{_RT}.RunnerScaleSetSessionConflictException, {_RT}"
SCALE_SET_NOT_FOUND = f"{_RT}.RunnerScaleSetNotFoundException, {_RT}"
SESSION_EXPIRED = f"{_RT}.RunnerScaleSetSessionExpiredException, {_RT}"
RUNNER_ADMIN = f"{_RT}.RunnerAdminException, {_RT}"
# Cases the reference leaves open; the names are the simulator's choice.
SCALE_SET_EXISTS = f"{_RT}.RunnerScaleSetExistsException, {_RT}"
RUNNER_GROUP_NOT_FOUND = f"{_RT}.RunnerGroupNotFoundException, {_RT}"
INVALID_REQUEST = f"{_SVC}.VssInvalidRequestException, {_SVC}"
UNAUTHORIZED = f"{_SVC}.VssUnauthorizedException, {_SVC}"

GITHUB_DOCS = "https://docs.github.com/rest"


class ApiError(Exception):
    """An error answer; :meth:`response` renders it."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, object]:
        return {"message": self.message}

    def response(self) -> Response:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


class PlainError(ApiError):
    """``{"message": ...}``: message-queue and simulator-private routes."""


class RestError(ApiError):
    """GitHub REST API error body."""

    def body(self) -> dict[str, object]:
        return {
            "message": self.message,
            "documentation_url": GITHUB_DOCS,
            "status": str(self.status),
        }


class VssError(ApiError):
    """Actions-service error body with a .NET exception ``typeName``."""

    def __init__(self, status: int, type_name: str, message: str) -> None:
        super().__init__(status, message)
        self.type_name = type_name

    def body(self) -> dict[str, object]:
        short = self.type_name.split(",", 1)[0].rsplit(".", 1)[-1]
        return {
            "$id": "1",
            "innerException": None,
            "message": self.message,
            "typeName": self.type_name,
            "typeKey": short,
            "errorCode": 0,
            "eventId": 3000,
        }
