"""Fault injection for GitHub-facing routes: latency, errors, dropped connections, rate limits.

Settings arrive from ``POST /_sim/faults`` (or the command line) as :class:`FaultSettings`.
``routes`` lists stats keys such as ``"GET /message"``; ``None`` means every GitHub-facing
route. Random draws come from a generator seeded with the simulator seed and re-seeded on
every change of settings, so a scenario replays identically.

A *dropped connection* starts a response and closes the socket mid-body: the client sees a
transport error, and the request was not processed. The primary rate limit answers 403 with
``X-RateLimit-Remaining: 0`` like GitHub; every targeted response carries the
``X-RateLimit-*`` headers while a limit is configured.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Collection

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gha_scalesets.simulator.clock import Clock
from gha_scalesets.simulator.errors import PlainError, RestError
from gha_scalesets.simulator.limits import PRIMARY_MESSAGE, HourlyWindow

RATE_LIMIT_WINDOW_SECONDS = 3600.0
_DROPPED_BODY_LENGTH = 64


class FaultSettings(BaseModel):
    """The fault knobs; all off by default. Each is also an option of ``python -m
    gha_scalesets.simulator`` (``routes``: ``--fault-route``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(0.0, ge=0, description="Added latency on GitHub routes.")
    jitter_ms: float = Field(0.0, ge=0, description="Uniform +/- jitter on the latency.")
    error_rate: float = Field(
        0.0, ge=0, le=1, description="Share of requests answered with an error."
    )
    error_status: int = Field(503, description="Injected error status (429 or 5xx).")
    retry_after_seconds: int | None = Field(
        None, ge=0, description="Retry-After on injected 429/503."
    )
    drop_rate: float = Field(0.0, ge=0, le=1, description="Share of connections dropped.")
    rate_limit_per_hour: int | None = Field(
        None, ge=0, description="Primary rate limit (403 when exhausted)."
    )
    rate_limit_window_seconds: float = Field(
        RATE_LIMIT_WINDOW_SECONDS,
        gt=0,
        description="The primary rate limit's window (shorter: X-RateLimit-Reset passes soon).",
    )
    routes: tuple[str, ...] | None = Field(
        None,
        description="Limit faults to this route key, e.g. 'GET /message' (repeatable).",
        json_schema_extra={"option": "fault_route"},
    )
    empty_body_rate: float = Field(
        0.0, ge=0, le=1, description="Share of message GETs answered 200 with an empty body."
    )
    empty_queue_url_once: bool = Field(
        False, description="Answer the next session creation without a message queue URL."
    )
    mq_unauthorized_once: bool = Field(
        False, description="Answer the next message-queue request 401."
    )

    @field_validator("error_status")
    @classmethod
    def _retryable_status(cls, value: int) -> int:
        if value != 429 and not 500 <= value <= 599:
            raise ValueError("error_status must be 429 or a 5xx status")
        return value


class DroppedConnection(Response):
    """Starts a response and returns without finishing it, so the server aborts the socket."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = str(_DROPPED_BODY_LENGTH).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", length)],
            }
        )
        await send({"type": "http.response.body", "body": b"{", "more_body": True})


class FaultInjector:
    """Applies the current :class:`FaultSettings` to GitHub-facing requests."""

    def __init__(self, clock: Clock, seed: int, known_routes: Collection[str]) -> None:
        self._clock = clock
        self._seed = seed
        self._known = frozenset(known_routes)
        self.configure(FaultSettings())

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def configure(self, settings: FaultSettings) -> None:
        """Replace all settings (``FaultSettings()`` clears) and restart the random stream."""
        unknown = sorted(set(settings.routes or ()) - self._known)
        if unknown:
            raise ValueError(
                f"unknown routes {unknown}; use keys of /_sim/stats 'requests', e.g. "
                f"{sorted(self._known)[:3]}"
            )
        self._settings = settings
        self._rng = random.Random(f"{self._seed}:faults")
        limit = settings.rate_limit_per_hour
        self._primary = (
            HourlyWindow(limit, settings.rate_limit_window_seconds, "core")
            if limit is not None
            else None
        )
        self._empty_queue_url_pending = settings.empty_queue_url_once
        self._mq_unauthorized_pending = settings.mq_unauthorized_once

    def _targets(self, route: str) -> bool:
        routes = self._settings.routes
        return routes is None or route in routes

    async def intercept(self, route: str) -> Response | None:
        """Apply rate limit, latency, drops and errors; a response here replaces the handler's."""
        if not self._targets(route):
            return None
        s = self._settings
        limited = self._consume_rate_limit()
        if limited is not None:
            return limited
        await self.delay(route)
        if s.drop_rate and self._rng.random() < s.drop_rate:
            return DroppedConnection()
        if s.error_rate and self._rng.random() < s.error_rate:
            headers = {}
            retry_after = s.retry_after_seconds
            if retry_after is None and s.error_status == 429:
                retry_after = 1
            if retry_after is not None and s.error_status in (429, 503):
                headers["Retry-After"] = str(retry_after)
            return PlainError(s.error_status, "injected fault", headers).response()
        return None

    async def delay(self, route: str) -> None:
        """The injected latency of one request (also paid by one a rate limit refuses)."""
        s = self._settings
        if not self._targets(route):
            return
        delay_ms = s.latency_ms + (
            self._rng.uniform(-s.jitter_ms, s.jitter_ms) if s.jitter_ms else 0
        )
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)

    def decorate(self, route: str, response: Response) -> None:
        """Add the rate-limit headers to a handler's response."""
        if self._primary is not None and self._targets(route):
            response.headers.update(self._primary.headers())

    def _consume_rate_limit(self) -> Response | None:
        primary = self._primary
        if primary is None or primary.take(self._clock.now()):
            return None
        return RestError(403, PRIMARY_MESSAGE, primary.headers()).response()

    def empty_body(self) -> bool:
        """Roll the ``empty_body_rate`` die for one message-queue GET."""
        rate = self._settings.empty_body_rate
        return bool(rate) and self._rng.random() < rate

    def take_empty_queue_url(self) -> bool:
        taken, self._empty_queue_url_pending = self._empty_queue_url_pending, False
        return taken

    def take_mq_unauthorized(self) -> bool:
        taken, self._mq_unauthorized_pending = self._mq_unauthorized_pending, False
        return taken
