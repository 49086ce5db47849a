"""Typed errors raised by the scale-set client.

Server errors are mapped from the VSS-style ``typeName`` (substring match, status independent,
as the reference clients do), then from the status class. Messages carry the route template,
never a URL with tokens, a credential or a JIT config.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # config URL and credential errors are raised without the HTTP stack loaded
    import httpx

_MAX_MESSAGE = 500


class ScaleSetError(Exception):
    """Base class of every error raised by :mod:`scaleset`."""


class ConfigUrlError(ScaleSetError, ValueError):
    """The GitHub config URL does not point to an enterprise, organization or repository."""


class CredentialsError(ScaleSetError, ValueError):
    """The credentials are malformed or cannot be used for this config URL."""


class ProtocolError(ScaleSetError):
    """The service answered with a body the wire contract does not allow (empty, malformed, …)."""


class AmbiguousNameError(ScaleSetError):
    """A lookup by name matched more than one object, so the client refuses to guess."""


class RunnerGroupNotFoundError(ScaleSetError):
    """No runner group has the requested name."""


class TransportError(ScaleSetError):
    """No HTTP answer came back (refused, reset, timed out), even after retries."""


class ApiError(ScaleSetError):
    """The service answered with an error status.

    ``activity_id`` (Actions service) and ``request_id`` (REST ``X-GitHub-Request-Id``) are the
    identifiers GitHub support asks for; ``retry_after`` is the wait the server asked for, if any.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_name: str = "",
        activity_id: str | None = None,
        request_id: str | None = None,
        operation: str = "",
        attempts: int = 1,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        self.message = message
        self.type_name = type_name
        self.activity_id = activity_id
        self.request_id = request_id
        self.operation = operation
        self.attempts = attempts
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.operation} failed with HTTP {self.status}" if self.operation else ""
        text = text or f"HTTP {self.status}"
        if self.attempts > 1:
            text += f" after {self.attempts} attempts"
        text += f": {self.message}"
        ids = [f"ActivityId={self.activity_id}"] if self.activity_id else []
        if self.request_id:
            ids.append(f"X-GitHub-Request-Id={self.request_id}")
        if ids:
            text += f" ({', '.join(ids)})"
        hint = self.hint()
        return f"{text}. {hint}" if hint else text

    def hint(self) -> str:
        """An actionable next step for the user, if one is known."""
        return ""


class UnauthorizedError(ApiError):
    """401: the credential or a token derived from it was rejected."""

    def hint(self) -> str:
        return "Check that the PAT or GitHub App credentials are valid and not revoked"


class MessageQueueTokenExpiredError(UnauthorizedError):
    """401 from the message queue: the session's access token expired."""

    def hint(self) -> str:
        return "The message session must be refreshed"


class ForbiddenError(ApiError):
    """403: the credential lacks a permission (or a primary rate limit was hit)."""

    def hint(self) -> str:
        return (
            "The PAT needs repo / admin:org / manage_runners:enterprise for the scope; a GitHub "
            "App needs Organization 'Self-hosted runners: read and write' (repos: 'Administration')"
        )


class RateLimitedError(ApiError):
    """429, or a 403 that names a rate limit (or leaves none); ``retry_after`` is the server's
    wait in seconds."""

    def hint(self) -> str:
        if self.retry_after is None:
            return "Slow down and retry later"
        return f"Retry in {self.retry_after:.0f} s"


class NotFoundError(ApiError):
    """404 without a more specific type."""


class ConflictError(ApiError):
    """409 without a more specific type."""


class ScaleSetNotFoundError(NotFoundError):
    """The scale set does not exist (deleted on GitHub or garbage-collected while offline)."""

    def hint(self) -> str:
        return (
            "Was it deleted on GitHub or removed after a week without a listener? "
            "Run `pulumi refresh`"
        )


class RunnerNotFoundError(NotFoundError):
    """The runner (agent) does not exist."""


class SessionNotFoundError(NotFoundError):
    """The message session expired or is unknown to the service; create a new one."""

    def hint(self) -> str:
        return "Create a new message session"


class SessionConflictError(ConflictError):
    """The scale set already has an active message session (another listener, or a stale one)."""

    def hint(self) -> str:
        return (
            "Another listener owns the scale set, or a crashed listener's session has not expired "
            "yet; stop the other listener or wait for the session to expire"
        )


class RunnerExistsError(ConflictError):
    """A runner with this name is already registered."""


class JobStillRunningError(ApiError):
    """The runner is busy with a job and cannot be removed yet."""


# Order matters: the first substring found in typeName wins.
_TYPE_NAMES: tuple[tuple[str, type[ApiError]], ...] = (
    ("AgentExistsException", RunnerExistsError),
    ("AgentNotFoundException", RunnerNotFoundError),
    ("JobStillRunningException", JobStillRunningError),
    ("RunnerScaleSetSessionConflictException", SessionConflictError),
    ("RunnerScaleSetNotFoundException", ScaleSetNotFoundError),
    ("RunnerScaleSetSessionExpiredException", SessionNotFoundError),
)

_STATUSES: dict[int, type[ApiError]] = {
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitedError,
}


def _parse_body(response: httpx.Response) -> tuple[str, str]:
    """Return (typeName, message) following the reference error builder."""
    raw = response.content.removeprefix(b"\xef\xbb\xbf")
    if not raw.strip():
        return "", "unknown error"
    text = raw.decode("utf-8", errors="replace")
    if "text/plain" in response.headers.get("content-type", ""):
        return "", text.strip()[:_MAX_MESSAGE]
    try:
        body = json.loads(text)
    except ValueError:
        return "", text.strip()[:_MAX_MESSAGE]
    if not isinstance(body, dict):
        return "", text.strip()[:_MAX_MESSAGE]
    lowered = {str(k).lower(): v for k, v in body.items()}
    type_name = str(lowered.get("typename") or "")
    message = str(lowered.get("message") or "") or type_name.split(",")[0] or "unknown error"
    return type_name, message[:_MAX_MESSAGE]


def rate_limit_signal(response: httpx.Response) -> bool:
    """Whether GitHub says a rate limit was hit: 429, or 403 with ``Retry-After``, with
    ``X-RateLimit-Remaining: 0`` or naming a (secondary) rate limit in its message."""
    if response.status_code == 429:
        return True
    if response.status_code != 403:
        return False
    headers = response.headers
    if "Retry-After" in headers or headers.get("X-RateLimit-Remaining") == "0":
        return True
    return b"rate limit" in response.content.lower()


def error_class(status: int, type_name: str) -> type[ApiError]:
    """The most specific error class for a status and a service ``typeName``."""
    for needle, cls in _TYPE_NAMES:
        if needle in type_name:
            return cls
    return _STATUSES.get(status, ApiError)


def error_from_response(
    response: httpx.Response,
    operation: str,
    *,
    attempts: int = 1,
    retry_after: float | None = None,
    override: type[ApiError] | None = None,
) -> ApiError:
    """Build the typed error for an HTTP error response.

    ``override`` replaces the class when the caller knows better (e.g. the message queue's 401).
    """
    type_name, message = _parse_body(response)
    cls = override or error_class(response.status_code, type_name)
    if cls is ForbiddenError and rate_limit_signal(response):
        cls = RateLimitedError
    return cls(
        response.status_code,
        message,
        type_name=type_name,
        activity_id=response.headers.get("ActivityId"),
        request_id=response.headers.get("X-GitHub-Request-Id"),
        operation=operation,
        attempts=attempts,
        retry_after=retry_after,
    )
