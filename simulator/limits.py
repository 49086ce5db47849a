"""GitHub's rate limits, per route class and per credential; off until configured.

Every GitHub-facing route belongs to one class: ``rest`` (``/api/v3``), ``jit``
(``generatejitconfig``), ``queue`` (the message queue and ``acquirejobs``, which carry the
session's queue token) and ``admin`` (the rest of the Actions service admin API). A class with a
:class:`LimitRule` counts its requests per *credential*: the PAT, or the GitHub App (its JWT
and installation tokens), or the credential behind a derived token (a registration token, an
admin token or a session's queue token remembers the credential it came from).

A rule combines GitHub's documented budgets, each optional:

- ``points_per_window``: points in a sliding window of ``window_seconds`` (GitHub: 900 a
  minute per REST endpoint; ``read_cost`` 1 for GET/HEAD/OPTIONS, ``write_cost`` 5 otherwise);
- ``max_concurrent``: requests in flight (GitHub: 100);
- ``content_per_window`` / ``content_per_hour``: content-creating (POST) requests (GitHub:
  about 80 a minute and 500 an hour);
- ``cpu_seconds_per_window``: the summed service time, injected latency included (GitHub: 90 s
  of CPU per 60 s, estimated by response times);
- ``requests_per_hour``: the primary limit in a fixed window of ``hour_seconds``, announced by
  ``X-RateLimit-*`` headers on every response of the class (GitHub: 5,000 to 15,000).

Breaking a secondary budget answers ``status`` (403 or 429) with ``Retry-After`` (unless
``retry_after`` is off, as GitHub sometimes does) and blocks the credential's class for
``block_seconds``. Every request during a block is refused too and *restarts* it, so a client
that keeps knocking stays locked out. An exhausted primary answers 403 with
``X-RateLimit-Remaining: 0`` until its window resets. Windows and blocks run on the simulator
clock (tests advance it); ``window_seconds``/``hour_seconds``/``block_seconds`` shrink for
benchmarks that model minutes in seconds.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from gha_scalesets.simulator.clock import Clock
from gha_scalesets.simulator.errors import RestError

RouteClass = Literal["rest", "admin", "jit", "queue"]
ROUTE_CLASSES: tuple[RouteClass, ...] = ("rest", "admin", "jit", "queue")
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
PRIMARY_MESSAGE = "API rate limit exceeded (simulated primary rate limit)"
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again "
    "(simulated {budget} limit)."
)


def route_class(route: str) -> RouteClass:
    """The class of a stats route key such as ``"POST /api/v3/actions/runner-registration"``."""
    _, _, path = route.partition(" ")
    if path.startswith("/api/v3/"):
        return "rest"
    if path.endswith("/generatejitconfig"):
        return "jit"
    if path.startswith("/message") or path.endswith("/acquirejobs"):
        return "queue"
    return "admin"


def pat_credential(pat: str) -> str:
    """The credential id of a PAT in stats and limit overrides (a digest, never the token)."""
    return "pat:" + hashlib.sha256(pat.encode()).hexdigest()[:8]


def app_credential(client_id: str) -> str:
    return f"app:{client_id}"


class LimitRule(BaseModel):
    """The budgets of one route class, each counted per credential (``None``: unlimited)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    points_per_window: int | None = Field(None, ge=1)
    read_cost: int = Field(1, ge=1)
    write_cost: int = Field(5, ge=1)
    max_concurrent: int | None = Field(None, ge=1)
    content_per_window: int | None = Field(None, ge=1)
    content_per_hour: int | None = Field(None, ge=1)
    cpu_seconds_per_window: float | None = Field(None, gt=0)
    requests_per_hour: int | None = Field(None, ge=0)
    window_seconds: float = Field(60.0, gt=0)
    hour_seconds: float = Field(3600.0, gt=0)
    block_seconds: float = Field(60.0, gt=0)
    status: Literal[403, 429] = 403
    retry_after: bool = True

    def cost(self, method: str) -> int:
        return self.read_cost if method in _READS else self.write_cost


class LimitSettings(BaseModel):
    """Rules per route class, and per-credential overrides (``"pat:<digest>"``, ``"app:<id>"``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    classes: dict[RouteClass, LimitRule] = Field(default_factory=dict)
    credentials: dict[str, dict[RouteClass, LimitRule]] = Field(default_factory=dict)

    def rule(self, cls: RouteClass, credential: str) -> LimitRule | None:
        return self.credentials.get(credential, {}).get(cls) or self.classes.get(cls)


class SlidingSum:
    """The sum of values added within the last ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._entries: deque[tuple[float, float]] = deque()
        self._total = 0.0

    def total(self, now: float) -> float:
        while self._entries and self._entries[0][0] <= now - self._seconds:
            self._total -= self._entries.popleft()[1]
        return self._total

    def add(self, now: float, value: float) -> None:
        self._entries.append((now, value))
        self._total += value


class HourlyWindow:
    """A primary limit: ``limit`` requests per fixed window, and its ``X-RateLimit-*`` headers."""

    def __init__(self, limit: int, seconds: float, resource: str) -> None:
        self.limit = limit
        self._seconds = seconds
        self._resource = resource
        self.end = 0.0
        self.used = 0

    def take(self, now: float) -> bool:
        """Count one request; ``False`` (nothing counted) when the window is spent."""
        if now >= self.end:
            self.end, self.used = now + self._seconds, 0
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.limit - self.used, 0)),
            "X-RateLimit-Used": str(self.used),
            "X-RateLimit-Reset": str(math.ceil(self.end)),
            "X-RateLimit-Resource": self._resource,
        }


@dataclass
class Budget:
    """One credential's budgets and counters in one route class."""

    rule: LimitRule
    cls: RouteClass
    points: SlidingSum = field(init=False)
    content: SlidingSum = field(init=False)
    content_hour: SlidingSum = field(init=False)
    cpu: SlidingSum = field(init=False)
    primary: HourlyWindow | None = field(init=False)
    in_flight: int = 0
    blocked_until: float = 0.0  # a secondary block, or an exhausted primary until its reset
    block_started: float = 0.0
    closed_blocks: float = 0.0  # seconds blocked in blocks that have ended
    requests: int = 0
    refused: int = 0
    refused_in_block: int = 0
    first_refused_at: float | None = None

    def __post_init__(self) -> None:
        rule = self.rule
        self.points = SlidingSum(rule.window_seconds)
        self.content = SlidingSum(rule.window_seconds)
        self.content_hour = SlidingSum(rule.hour_seconds)
        self.cpu = SlidingSum(rule.window_seconds)
        self.primary = (
            HourlyWindow(
                rule.requests_per_hour,
                rule.hour_seconds,
                "core" if self.cls == "rest" else self.cls,
            )
            if rule.requests_per_hour is not None
            else None
        )

    def broken_budget(self, method: str, now: float) -> str | None:
        """The secondary budget this request would break, if any."""
        rule = self.rule
        if rule.max_concurrent is not None and self.in_flight >= rule.max_concurrent:
            return "concurrent requests"
        points = rule.points_per_window
        if points is not None and self.points.total(now) + rule.cost(method) > points:
            return "points per window"
        if method == "POST":
            if rule.content_per_window is not None and (
                self.content.total(now) >= rule.content_per_window
            ):
                return "content creation per window"
            if rule.content_per_hour is not None and (
                self.content_hour.total(now) >= rule.content_per_hour
            ):
                return "content creation per hour"
        cpu = rule.cpu_seconds_per_window
        if cpu is not None and self.cpu.total(now) >= cpu:
            return "CPU time"
        return None

    def block(self, now: float, until: float) -> None:
        """Block until ``until``, or extend the current block to it."""
        if now >= self.blocked_until:
            self.closed_blocks += self.blocked_until - self.block_started
            self.block_started = now
        self.blocked_until = max(self.blocked_until, until)

    def blocked_seconds(self, now: float) -> float:
        return self.closed_blocks + max(0.0, min(now, self.blocked_until) - self.block_started)

    def admit(self, method: str, now: float) -> None:
        self.requests += 1
        self.in_flight += 1
        self.points.add(now, self.rule.cost(method))
        if method == "POST":
            self.content.add(now, 1)
            self.content_hour.add(now, 1)

    def stats(self, now: float) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "refused": self.refused,
            "refused_in_block": self.refused_in_block,
            "blocked_seconds": round(self.blocked_seconds(now), 3),
            "first_refused_at": self.first_refused_at,
        }


class Admission:
    """An admitted request: frees its concurrency slot and books its service time when done."""

    def __init__(self, budget: Budget, clock: Clock) -> None:
        self._budget = budget
        self._clock = clock

    def finish(self, service_seconds: float, response: Response | None) -> None:
        budget = self._budget
        budget.in_flight -= 1
        budget.cpu.add(self._clock.now(), service_seconds)
        if budget.primary is not None and response is not None:
            response.headers.update(budget.primary.headers())


class RateLimits:
    """Applies the current :class:`LimitSettings`; counters per (credential, route class)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.settings = LimitSettings()
        self._budgets: dict[tuple[str, RouteClass], Budget] = {}

    @property
    def active(self) -> bool:
        return bool(self.settings.classes or self.settings.credentials)

    def configure(self, settings: LimitSettings) -> None:
        """Replace the rules; counters and blocks start over."""
        self.settings = settings
        self._budgets.clear()

    def reset(self) -> None:
        self._budgets.clear()

    def admit(self, route: str, method: str, credential: str | None) -> Admission | Response | None:
        """Count a request of ``credential``: an :class:`Admission`, the refusal to send, or
        ``None`` when no rule covers it."""
        cls = route_class(route)
        rule = self.settings.rule(cls, credential) if credential is not None else None
        if rule is None or credential is None:
            return None
        key = (credential, cls)
        budget = self._budgets.get(key)
        if budget is None or budget.rule is not rule:
            budget = self._budgets[key] = Budget(rule, cls)
        now = self._clock.now()
        primary = budget.primary
        if now < budget.blocked_until:  # knocking during a block: a secondary one restarts
            if primary is None or now >= primary.end or primary.used < primary.limit:
                budget.block(now, now + rule.block_seconds)
            return self._refuse(budget, now, "secondary", in_block=True)
        broken = budget.broken_budget(method, now)
        if broken is not None:
            budget.block(now, now + rule.block_seconds)
            return self._refuse(budget, now, broken, in_block=False)
        if primary is not None and not primary.take(now):
            budget.block(now, primary.end)
            return self._refuse(budget, now, None, in_block=False)
        budget.admit(method, now)
        return Admission(budget, self._clock)

    def _refuse(
        self, budget: Budget, now: float, broken: str | None, *, in_block: bool
    ) -> Response:
        budget.refused += 1
        budget.refused_in_block += in_block
        if budget.first_refused_at is None:
            budget.first_refused_at = now
        primary = budget.primary
        if primary is not None and primary.used >= primary.limit and now < primary.end:
            # the primary limit: no Retry-After, the reset says when
            return RestError(403, PRIMARY_MESSAGE, primary.headers()).response()
        headers = primary.headers() if primary is not None else {}
        if budget.rule.retry_after:
            headers["Retry-After"] = str(math.ceil(budget.blocked_until - now))
        message = SECONDARY_MESSAGE.format(budget=broken)
        return RestError(budget.rule.status, message, headers).response()

    def stats(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Counters per credential and route class (only pairs that saw a request)."""
        now = self._clock.now()
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for (credential, cls), budget in sorted(self._budgets.items()):
            out.setdefault(credential, {})[cls] = budget.stats(now)
        return out
