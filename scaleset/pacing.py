"""Pacing: every credential stays under GitHub's rate limits instead of running into them.

Requests fall in route classes (:func:`route_class`): ``rest`` (the auth chain on the REST
API), ``jit`` (``generatejitconfig``), ``admin`` (the rest of the Actions admin API) and
``queue`` (the message queue and job acquisition, on the session's token). Per credential and
class a :class:`CredentialPacer` keeps:

- a window budget: at most ``ceiling`` requests in any window of ``window_seconds`` (stretched
  by ``window_margin``). A request counts from its reservation until a window after its answer
  came back, which is never before GitHub counted it: however late the event loop sends it, two
  windows' worth never land in one of GitHub's. The ceiling is configured (GitHub: 900 points
  a minute per REST endpoint, 5 per POST: 180 JIT configs) or, when unknown, learned from a
  limit signal: what got through in the window before it (at least ``learn_min_requests``, else
  the signal says nothing about a rate; forgotten after ``learned_ttl_seconds``, as GitHub may
  change its limits);
- a block: after a limit signal (429, or 403 with ``Retry-After``, ``X-RateLimit-Remaining: 0``
  or a message naming a rate limit) nothing of that class goes out with that credential, from
  any task or connection-pool shard, until ``Retry-After`` or ``X-RateLimit-Reset`` has passed,
  or for a minute doubling per signal in a row when GitHub gives neither (its documented advice).
  A success reporting ``X-RateLimit-Remaining: 0`` blocks until the reset as well;
- adaptive concurrency over the Actions service's ``admin`` and ``jit`` classes (long polls are
  no API load, and the auth chain must never wait behind the calls that need it): halved on
  the signal that starts a block, one more per window of successes (AIMD), at most
  ``max_concurrency`` (GitHub allows 100 concurrent requests).

A :class:`Pacer` spreads requests over several credentials: each goes to the ready credential
with the most budget left; a blocked one, or one whose credential was refused, is set aside
until then. Waiters queue first come, first served. With ``enabled=False`` nothing waits
(the behaviour before pacing) but signals and refusals are still counted.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from gha_scalesets.scaleset.errors import RateLimitedError, rate_limit_signal
from gha_scalesets.scaleset.retry import server_requested_delay

RouteClass = Literal["rest", "admin", "jit", "queue"]
ROUTE_CLASSES: tuple[RouteClass, ...] = ("rest", "admin", "jit", "queue")
_CONCURRENT: frozenset[RouteClass] = frozenset({"admin", "jit"})  # under the adaptive cap


def route_class(route: str) -> RouteClass:
    """The class of a request's route template."""
    if route.endswith("generatejitconfig"):
        return "jit"
    if route.startswith("{messageQueueUrl}") or route.endswith("acquirejobs"):
        return "queue"
    if route.startswith("_apis/"):
        return "admin"
    return "rest"


@dataclass(frozen=True)
class PacingSettings:
    """What pacing may assume; ``ceilings`` are requests per window, per class and credential."""

    enabled: bool = True
    ceilings: Mapping[str, int] = field(default_factory=dict)
    window_seconds: float = 60.0
    window_margin: float = 0.02
    max_concurrency: int = 100
    default_block_seconds: float = 60.0
    max_block_seconds: float = 3600.0
    learn: bool = True
    learn_min_requests: int = 10
    learned_ttl_seconds: float = 3600.0
    # A credential refused by GitHub (revoked, suspended) is tried again after this.
    rejected_seconds: float = 300.0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.ceilings) - set(ROUTE_CLASSES))
        if unknown:
            raise ValueError(
                f"pacing ceilings for unknown route classes {unknown}: {ROUTE_CLASSES}"
            )
        if any(value < 1 for value in self.ceilings.values()):
            raise ValueError("pacing ceilings must be at least 1 request per window")
        if self.window_seconds <= 0 or self.max_concurrency < 1 or self.window_margin < 0:
            raise ValueError("pacing needs a positive window, margin >= 0 and concurrency >= 1")


@dataclass(eq=False)
class Ticket:
    """One HTTP attempt's place: reserved by :meth:`Pacer.acquire`, then sent, then finished."""

    lane: CredentialPacer
    cls: RouteClass
    seen_block: float = 0.0  # the class's block end when it was reserved (waited out by then)
    sent_at: float | None = None
    finished: bool = False


@dataclass
class _ClassPace:
    """One credential's pacing state and counters in one route class."""

    ceiling: int | None
    configured: int | None = None
    learned_at: float | None = None
    learn_before: float | None = None  # a refused request's send time, to learn from at block end
    done: deque[float] = field(default_factory=deque)  # answer times within the window
    accepted: deque[float] = field(default_factory=deque)  # send times of unrefused requests
    outstanding: int = 0  # reserved or sent, no answer yet
    blocked_until: float = 0.0
    signals_in_row: int = 0
    first_signal_at: float | None = None
    requests: int = 0
    refused: int = 0
    refused_after_signal: int = 0
    blocked_seconds: float = 0.0
    remaining: int | None = None  # the primary limit, from X-RateLimit-* headers
    limit: int | None = None

    def prune(self, now: float, window: float, learned_ttl: float) -> None:
        if self.learned_at is not None and now - self.learned_at > learned_ttl:
            self.ceiling, self.learned_at = self.configured, None
        while self.done and self.done[0] <= now - window:
            self.done.popleft()
        while self.accepted and self.accepted[0] <= now - 2 * window:
            self.accepted.popleft()

    def room(self) -> float:
        """Requests the window still admits (the primary's remaining when no ceiling is set)."""
        if self.ceiling is not None:
            return self.ceiling - len(self.done) - self.outstanding
        return math.inf if self.remaining is None else self.remaining - self.outstanding

    def block(self, now: float, until: float) -> bool:
        """Block until ``until``; whether this starts a block (rather than extends one)."""
        starts = now >= self.blocked_until
        self.blocked_seconds += max(0.0, until - max(now, self.blocked_until))
        self.blocked_until = max(self.blocked_until, until)
        return starts


class CredentialPacer:
    """The pacing of one credential: per-class windows and blocks, shared adaptive concurrency."""

    def __init__(
        self,
        label: str,
        settings: PacingSettings,
        clock: Callable[[], float],
        wake: Callable[[], None],
    ) -> None:
        self.label = label
        self.settings = settings
        self._clock = clock
        self._wake = wake
        self._window = settings.window_seconds * (1 + settings.window_margin)
        self._classes = {
            c: _ClassPace(settings.ceilings.get(c), settings.ceilings.get(c)) for c in ROUTE_CLASSES
        }
        self.concurrency = float(settings.max_concurrency)
        self.in_flight = 0
        self.rejected_until = 0.0
        self.rejections = 0

    def usable(self, now: float) -> bool:
        return now >= self.rejected_until

    def reject(self, now: float, seconds: float) -> None:
        """Set the credential aside: GitHub refused it (or its auth chain is rate limited)."""
        self.rejected_until = now + seconds
        self.rejections += 1

    def blocked_for(self, cls: RouteClass, now: float) -> float:
        return max(0.0, self._classes[cls].blocked_until - now) if self.settings.enabled else 0.0

    def ready_in(self, cls: RouteClass, now: float) -> float:
        """Seconds until the class's block and window admit a request (concurrency aside);
        ``inf`` while that depends on answers still outstanding."""
        if not self.settings.enabled:
            return 0.0
        state = self._classes[cls]
        wait = self.blocked_for(cls, now)
        if state.learn_before is not None and wait <= 0:
            self._learn(state, state.learn_before, now)  # every earlier request has its answer
        state.prune(now, self._window, self.settings.learned_ttl_seconds)
        if state.ceiling is not None:
            over = len(state.done) + state.outstanding - state.ceiling
            if over >= len(state.done):
                return math.inf
            if over >= 0:
                wait = max(wait, state.done[over] + self._window - now)
        return wait

    def _concurrency_full(self, cls: RouteClass) -> bool:
        return cls in _CONCURRENT and self.in_flight >= int(self.concurrency)

    def room(self, cls: RouteClass) -> float:
        return self._classes[cls].room()

    def busy(self) -> int:
        return sum(state.outstanding for state in self._classes.values())

    def admits(self, cls: RouteClass, now: float) -> bool:
        """Whether a request of ``cls`` may go now (always, when pacing is off)."""
        return not self.settings.enabled or (
            self.ready_in(cls, now) <= 0 and not self._concurrency_full(cls)
        )

    def reserve(self, cls: RouteClass) -> Ticket:
        state = self._classes[cls]
        state.outstanding += 1
        if cls in _CONCURRENT:
            self.in_flight += 1
        return Ticket(self, cls, seen_block=state.blocked_until)

    def new_block(self, ticket: Ticket) -> bool:
        """Whether a block began (or grew) since ``ticket`` was reserved."""
        return self.settings.enabled and self._classes[ticket.cls].blocked_until > ticket.seen_block

    def send(self, ticket: Ticket) -> None:
        self._classes[ticket.cls].requests += 1
        ticket.sent_at = self._clock()

    def cancel(self, ticket: Ticket) -> None:
        """Give back a ticket that was never sent."""
        if ticket.sent_at is None and not ticket.finished:
            self._release(ticket)

    def _release(self, ticket: Ticket) -> None:
        ticket.finished = True
        self._classes[ticket.cls].outstanding -= 1
        if ticket.cls in _CONCURRENT:
            self.in_flight -= 1
        self._wake()

    def finish(self, ticket: Ticket, response: httpx.Response | None, wall_now: float) -> bool:
        """Book the answer of a sent ticket (``None``: none came, yet it may have arrived);
        whether it was a rate-limit signal."""
        self._release(ticket)
        now = self._clock()
        state = self._classes[ticket.cls]
        state.done.append(now)
        if response is None:
            return False
        self._record_primary(state, response, now, wall_now)
        if not rate_limit_signal(response):
            state.signals_in_row = 0
            assert ticket.sent_at is not None
            state.accepted.append(ticket.sent_at)
            self.concurrency = min(
                float(self.settings.max_concurrency), self.concurrency + 1 / self.concurrency
            )
            return False
        state.refused += 1
        if state.first_signal_at is None:
            state.first_signal_at = now
        elif ticket.sent_at is not None and ticket.sent_at > state.first_signal_at:
            state.refused_after_signal += 1
        delay = server_requested_delay(response, wall_now)
        if delay is None:
            delay = min(
                self.settings.max_block_seconds,
                self.settings.default_block_seconds * 2**state.signals_in_row,
            )
        state.signals_in_row += 1
        if self.settings.enabled and state.block(now, now + delay):
            self.concurrency = max(1.0, self.concurrency / 2)
            if self.settings.learn:
                state.learn_before = ticket.sent_at
        return True

    def _record_primary(
        self, state: _ClassPace, response: httpx.Response, now: float, wall_now: float
    ) -> None:
        headers = response.headers
        try:
            state.remaining = int(headers["X-RateLimit-Remaining"])
            state.limit = int(headers["X-RateLimit-Limit"])
        except (KeyError, ValueError):
            return
        if state.remaining == 0 and response.is_success and self.settings.enabled:
            delay = server_requested_delay(response, wall_now)  # the reset: nothing gets through
            if delay:
                state.block(now, now + delay)

    def _learn(self, state: _ClassPace, refused_sent_at: float, now: float) -> None:
        """Take what got through in the window before a refusal as the class's ceiling."""
        state.learn_before = None
        since = refused_sent_at - self.settings.window_seconds
        got_through = sum(1 for sent in state.accepted if since < sent <= refused_sent_at)
        if got_through >= self.settings.learn_min_requests and (
            state.ceiling is None or got_through < state.ceiling
        ):
            state.ceiling, state.learned_at = got_through, now

    def snapshot(self) -> dict[str, Any]:
        """Counters and budgets for metrics and reports (no secrets: the label is public)."""
        now = self._clock()
        classes = {}
        for cls, state in self._classes.items():
            if state.requests or state.ceiling is not None or state.remaining is not None:
                state.prune(now, self._window, self.settings.learned_ttl_seconds)
                classes[cls] = {
                    "requests": state.requests,
                    "refused": state.refused,
                    "refused_after_signal": state.refused_after_signal,
                    "blocked_seconds": round(state.blocked_seconds, 3),
                    "blocked": self.blocked_for(cls, now) > 0,
                    "ceiling": state.ceiling,
                    "ceiling_learned": state.learned_at is not None,
                    "window_room": None if state.ceiling is None else max(0, state.room()),
                    "rate_limit_remaining": state.remaining,
                    "rate_limit_limit": state.limit,
                }
        return {
            "credential": self.label,
            "usable": self.usable(now),
            "rejections": self.rejections,
            "concurrency": round(self.concurrency, 2),
            "classes": classes,
        }


class Pacer:
    """The credentials of one client and the waiting room in front of them."""

    def __init__(
        self,
        labels: Sequence[str],
        settings: PacingSettings,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        max_wait: float = math.inf,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._max_wait = max_wait
        self._changed: asyncio.Event | None = None
        self.lanes = [CredentialPacer(label, settings, clock, self._notify) for label in labels]
        self._turns: dict[tuple[RouteClass, int], asyncio.Lock] = {}

    def now(self) -> float:
        return self._clock()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def lane(self, label: str) -> CredentialPacer | None:
        return next((lane for lane in self.lanes if lane.label == label), None)

    def usable(self) -> list[CredentialPacer]:
        now = self._clock()
        return [lane for lane in self.lanes if lane.usable(now)] or list(self.lanes)

    @staticmethod
    def _best(cls: RouteClass, candidates: Sequence[CredentialPacer], now: float) -> Ticket | None:
        """A reservation on the admitting credential with the most budget left."""
        ready = [lane for lane in candidates if lane.admits(cls, now)]
        if not ready:
            return None
        return max(ready, key=lambda lane: (lane.room(cls), -lane.busy())).reserve(cls)

    async def acquire(self, cls: RouteClass, lane: CredentialPacer | None = None) -> Ticket:
        """Wait for a credential (``lane``, or the best of the usable ones) to admit a request
        of ``cls``, and reserve it."""
        candidates = [lane] if lane is not None else self.usable()
        key = (cls, self.lanes.index(lane) if lane is not None else -1)
        turn = self._turns.setdefault(key, asyncio.Lock())
        async with turn:  # first come, first served: only the head of the queue waits on time
            virtual_now = self._clock()
            while True:
                now = max(self._clock(), virtual_now)
                ticket = self._best(cls, candidates, now)
                if ticket is not None:
                    return ticket
                waits = [c.ready_in(cls, now) for c in candidates]
                timed = [w for w in waits if 0 < w < math.inf]
                if len(timed) == len(waits):  # every candidate waits on time, none on answers
                    wait = min(timed)
                    blocked = min(c.blocked_for(cls, now) for c in candidates)
                    if blocked > self._max_wait:
                        raise RateLimitedError(
                            429,
                            f"credential(s) {', '.join(c.label for c in candidates)} rate limited "
                            f"for {blocked:.0f} s more",
                            operation=f"{cls} requests",
                            retry_after=blocked,
                        )
                    await self._sleep(wait)
                    # the clock may not have moved (tests): what was slept through is over
                    virtual_now = now + wait
                else:
                    await self._slot_freed(min(timed) if timed else None)

    async def _slot_freed(self, at_most: float | None) -> None:
        """Until a request finishes somewhere (or ``at_most`` seconds, on the injected sleep)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        self._changed.clear()
        waits: list[asyncio.Future[object]] = [asyncio.ensure_future(self._changed.wait())]
        if at_most:
            waits.append(asyncio.ensure_future(self._sleep(at_most)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()

    def snapshot(self) -> list[dict[str, Any]]:
        return [lane.snapshot() for lane in self.lanes]


class Gate:
    """The pacing of one logical request: each HTTP attempt enters it and leaves it.

    ``switchable``: a rate-limit signal ends the request at once so that the caller can route
    it to another credential (it never waits behind the block it just met).
    """

    def __init__(
        self,
        pacer: Pacer,
        ticket: Ticket,
        *,
        switchable: bool = False,
        wall_clock: Callable[[], float],
    ) -> None:
        self._pacer = pacer
        self._ticket = ticket
        self.lane = ticket.lane
        self.cls = ticket.cls
        self.switchable = switchable
        self._wall_clock = wall_clock

    @property
    def paces(self) -> bool:
        return self._pacer.settings.enabled

    async def enter(self) -> None:
        """Take the reserved place, or queue for a new one on the same credential."""
        ticket = self._ticket
        if ticket.finished or ticket.lane.new_block(ticket):
            ticket.lane.cancel(ticket)  # a block began since the reservation: wait it out
            ticket = self._ticket = await self._pacer.acquire(self.cls, self.lane)
        ticket.lane.send(ticket)

    def leave(self, response: httpx.Response | None) -> bool:
        """Book the attempt's answer (``None``: no answer); whether it was a limit signal."""
        return self.lane.finish(self._ticket, response, self._wall_clock())

    def blocked_for(self) -> float:
        return self.lane.blocked_for(self.cls, self._pacer.now())

    def close(self) -> None:
        """Give back a place that was reserved but never used."""
        self.lane.cancel(self._ticket)
