"""Sending one logical request: attempts, retries, the per-attempt observer and typed failures."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from gha_scalesets.scaleset.errors import ApiError, TransportError, error_from_response
from gha_scalesets.scaleset.retry import (
    RetryPolicy,
    may_have_reached_server,
    server_requested_delay,
    untrusted_certificate,
)
from gha_scalesets.scaleset.sharding import API_LANE, LANE_EXTENSION

if TYPE_CHECKING:
    from gha_scalesets.scaleset.pacing import Gate

log = logging.getLogger("scaleset")

Observer = Callable[[str, str, int | None, float], None]


@dataclass
class Request:
    """One logical request. ``route`` is the URL template used in metrics and error messages;
    ``gate`` paces every attempt (:mod:`scaleset.pacing`)."""

    method: str
    url: str
    route: str
    headers: dict[str, str]
    content: bytes | None = None
    timeout: httpx.Timeout | None = None
    retry_statuses: frozenset[int] = frozenset()
    pool_lane: str = API_LANE  # the connection budget it draws on (scaleset.sharding)
    gate: Gate | None = None

    @property
    def operation(self) -> str:
        return f"{self.method} {self.route}"


@dataclass
class Outcome:
    """The final response of a request and what the retries went through.

    ``ambiguous`` is true when an earlier attempt may have been applied by the server although
    its response was lost (transport error after sending, or a 5xx): a non-idempotent caller
    must then treat "already exists" / "not found" answers as possibly its own doing.
    ``limited``: a rate-limit signal ended the request early so the caller can route it to
    another credential; ``credential`` names the one that answered.
    """

    response: httpx.Response
    operation: str
    attempts: int
    ambiguous: bool = False
    retry_after: float | None = None
    limited: bool = False
    credential: str = ""

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def ok(self) -> bool:
        return 200 <= self.response.status_code < 300

    def error(self, override: type[ApiError] | None = None) -> ApiError:
        """The typed error for this (failed) outcome."""
        return error_from_response(
            self.response,
            self.operation,
            attempts=self.attempts,
            retry_after=self.retry_after,
            override=override,
        )


class Transport:
    """Sends requests through an ``httpx.AsyncClient`` under a :class:`RetryPolicy`."""

    def __init__(self, retry: RetryPolicy, observer: Observer | None = None) -> None:
        self.retry = retry
        self._observer = observer

    def _observe(self, request: Request, status: int | None, started: float) -> None:
        if self._observer is None:
            return
        try:
            self._observer(request.method, request.route, status, time.monotonic() - started)
        except Exception:  # a broken metrics hook must not break API calls
            log.exception("scaleset observer failed for %s", request.operation)

    async def send(self, http: httpx.AsyncClient, request: Request) -> Outcome:
        """Send with retries; return the last response (success or not) or raise TransportError.

        With a pacing ``gate`` every attempt waits for its credential's budget, and the wait a
        rate-limit signal asks for is taken in the gate (where every other request of that
        credential waits too), not here.
        """
        policy, gate = self.retry, request.gate
        deadline = time.monotonic() + policy.deadline if policy.deadline is not None else None
        ambiguous = False
        attempt = 0
        credential = gate.lane.label if gate is not None else ""
        while True:
            attempt += 1
            if gate is not None:
                await gate.enter()
            started = time.monotonic()
            paced_signal = False  # a rate-limit signal whose wait the gate takes
            try:
                response = await http.request(
                    request.method,
                    request.url,
                    headers=request.headers,
                    content=request.content,
                    timeout=request.timeout or httpx.USE_CLIENT_DEFAULT,
                    extensions={LANE_EXTENSION: request.pool_lane},
                )
            except BaseException as exc:
                if gate is not None:
                    gate.leave(None)
                if not isinstance(exc, httpx.TransportError):
                    raise
                self._observe(request, None, started)
                outcome = None
                failure = f"{type(exc).__name__}{': ' + str(exc) if str(exc) else ''}"
                if untrusted_certificate(exc):
                    failure += (
                        " (the server's certificate is not signed by a trusted CA: for GHES "
                        "with an internal CA, give its root certificate as ca_bundle)"
                    )
                if attempt >= policy.max_attempts or not policy.retryable_transport(exc):
                    raise TransportError(
                        f"{request.operation} failed after {attempt} attempt(s): {failure}"
                    ) from exc
                ambiguous = ambiguous or may_have_reached_server(exc)
                server_delay = None
            else:
                limited = gate.leave(response) if gate is not None else False
                self._observe(request, response.status_code, started)
                server_delay = server_requested_delay(response, policy.clock())
                paced_signal = limited and gate is not None and gate.paces
                if paced_signal and server_delay is None:
                    assert gate is not None
                    server_delay = gate.blocked_for()  # the pacer's block: at least a minute
                outcome = Outcome(
                    response,
                    request.operation,
                    attempt,
                    ambiguous,
                    server_delay,
                    limited,
                    credential,
                )
                if limited and gate is not None and gate.switchable:
                    return outcome  # another credential may take it at once
                if (
                    response.status_code < 400
                    or attempt >= policy.max_attempts
                    or not policy.retryable_status(response, request.retry_statuses)
                    or (server_delay is not None and server_delay > policy.max_server_wait)
                ):
                    return outcome
                ambiguous = ambiguous or response.status_code >= 500
                failure = f"HTTP {response.status_code}"
            delay = server_delay if server_delay is not None else policy.backoff(attempt)
            if deadline is not None and time.monotonic() + delay > deadline:
                if outcome is not None:
                    return outcome
                raise TransportError(
                    f"{request.operation} failed after {attempt} attempt(s), retry deadline of "
                    f"{policy.deadline:.0f} s reached: {failure}"
                )
            log.warning(
                "scaleset retrying %s after %s (attempt %d/%d, waiting %.2f s)",
                request.operation,
                failure,
                attempt,
                policy.max_attempts,
                delay,
            )
            if not paced_signal:
                await policy.sleep(delay)  # a paced signal is waited out in the gate
