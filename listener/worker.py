"""The session loop of one scale set: long-poll, apply the message, then acknowledge it."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from gha_scalesets.listener.config import ListenerSettings
from gha_scalesets.listener.leadership import LeaderElector, Takeover
from gha_scalesets.listener.metrics import ListenerMetrics
from gha_scalesets.listener.scaler import Scaler
from gha_scalesets.listener.scaling import Backoff
from gha_scalesets.listener.session import close_session, find_scale_set, is_transient, open_session
from gha_scalesets.scaleset import (
    Client,
    JobAssigned,
    JobAvailable,
    JobCompleted,
    JobMessage,
    JobStarted,
    MessageSession,
    ScaleSet,
    ScaleSetMessage,
)
from gha_scalesets.scaleset.errors import (
    ScaleSetError,
    ScaleSetNotFoundError,
    SessionNotFoundError,
    UnauthorizedError,
)

log = structlog.get_logger("listener.worker")

# A handover waits this long for the scaler's current step (a JIT batch, a launch) to end.
_HANDOVER_QUIESCE_SECONDS = 30.0


@dataclass(frozen=True)
class Phase:
    """Where in a ``window`` (the service's hold) a scale set's polls should return: at
    ``at`` (the event loop's time) plus whole windows."""

    at: float
    window: float

    def cut(self, now: float | None = None) -> float:
        """After how many seconds to cut the first poll; 0: it is in phase already."""
        now = asyncio.get_running_loop().time() if now is None else now
        delay = (self.at - now) % self.window
        return delay if delay > self.window / 50 else 0.0


@dataclass(frozen=True)
class Pacing:
    """What the workers of one listener share so that thousands of them start, hand over and
    stop without storms (docs/listener.md: "Capacity"): session creations and deletions in
    flight."""

    opens: asyncio.Semaphore
    closes: asyncio.Semaphore


async def _stop(task: asyncio.Task[object] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class ScaleSetWorker:
    """Leads one scale set (or stands by), holds its message session and feeds its
    :class:`Scaler`."""

    def __init__(
        self,
        scaler: Scaler,
        settings: ListenerSettings,
        *,
        client: Client,
        metrics: ListenerMetrics,
        owner: str,
        elector: LeaderElector,
        pacing: Pacing,
        on_handed_over: Callable[[], None],
        phase: Phase | None = None,
    ) -> None:
        """``phase``: when this scale set's polls should return (its first poll is cut short
        to get there), so that the polls of many scale sets return spread over the hold
        instead of all at once."""
        self.scaler = scaler
        self._settings = settings
        self._client = client
        self._metrics = metrics
        self._owner = owner
        self._elector = elector
        self._pacing = pacing
        self._phase = phase
        self._on_handed_over = on_handed_over
        self._name = scaler.scale_set.name
        self._backoff = Backoff(cap=settings.max_backoff_seconds)
        self._handover = asyncio.Event()
        self._keep_session = False  # handing over: the successor deletes the session
        self.session: MessageSession | None = None
        self.undeleted_session: str | None = None  # a session whose deletion did not finish

    @property
    def name(self) -> str:
        return self._name

    @property
    def leading(self) -> bool:
        return self._elector.leading

    @property
    def handing_over(self) -> bool:
        return self._handover.is_set()

    def hand_over(self) -> bool:
        """Ask this worker to hand its scale set over to another replica (balancing): it
        finishes the scaler's step, stops serving, leaves its session in the released lease
        for the new active to delete, and stands by. False when not leading."""
        if not self._elector.leading or self._handover.is_set():
            return False
        self._handover.set()
        return True

    @property
    def ready(self) -> bool:
        """Serving with a session, or a hot standby behind another replica's lease."""
        return self.session is not None or self._elector.standing_by

    def _session_event(self, event: str) -> None:
        self._metrics.session_events.labels(self._name, event).inc()

    def _set_leader(self, leading: bool) -> None:
        labels = self._metrics.scale_set_labels(self._name)
        self._metrics.leader.labels(*labels).set(1 if leading else 0)

    async def run(self) -> None:
        """Stand by until this replica holds the scale set's lease, serve while it does, stand
        by again when deposed; until cancelled (then the session is deleted and the lease
        released, in that order, so a standby takes over without a conflict)."""
        self._set_leader(False)  # a standby exports 0: "no replica leads" is a sum, not absence
        try:
            while True:
                takeover = await self._elector.acquire()
                self._metrics.lease_takeovers.labels(self._name, takeover.reason).inc()
                log.info(
                    "leading the scale set",
                    scale_set=self._name,
                    reason=takeover.reason,
                    previous_holder=takeover.previous_holder,
                )
                self._set_leader(True)
                try:
                    handed_over = await self._lead(takeover)
                finally:
                    self._set_leader(False)
                    self._end_handover()
                if handed_over:
                    self._metrics.lease_handovers.labels(self._name).inc()
                    log.info("handed over to balance the replicas", scale_set=self._name)
                    continue
                self._metrics.lease_losses.labels(self._name).inc()
                log.warning("deposed: standing by", scale_set=self._name)
        finally:
            await self._elector.release()

    def _end_handover(self) -> None:
        """A requested handover is over (done, or moot because leadership ended first)."""
        if self._handover.is_set():
            self._handover.clear()
            self._on_handed_over()

    async def _lead(self, takeover: Takeover) -> bool:
        """Serve until leadership is lost (False) or handed over (True); raises if serving
        failed."""
        stale = takeover.previous_session_id
        if stale:
            # A dead holder's session, or the one a handover left: no 409 to wait out.
            async with self._pacing.closes:
                deleted = await close_session(self._client, self.scaler.ss_id, stale, self._name)
            if deleted:
                self._session_event("taken_over")
        serve = asyncio.create_task(self._serve(), name=f"serve-{self._name}")
        guard = asyncio.create_task(self._elector.hold(), name=f"lease-{self._name}")
        handover = asyncio.create_task(self._handover.wait(), name=f"handover-{self._name}")
        try:
            await asyncio.wait([serve, guard, handover], return_when=asyncio.FIRST_COMPLETED)
            if serve.done() or guard.done():
                return False
            await self._stop_serving(serve)
            await _stop(guard)
            await self._elector.release(hand_over=True)
            return True
        finally:
            await _stop(handover)
            await _stop(guard)
            await _stop(serve)  # fenced: stop scaling at once; raises if serving failed
            self._keep_session = False

    async def _stop_serving(self, serve: asyncio.Task[None]) -> None:
        """Stop serving between two scaler steps (a handover must not cut a launch short)."""
        paused = False
        try:
            async with asyncio.timeout(_HANDOVER_QUIESCE_SECONDS):
                await self.scaler.pause()
                paused = True
        except TimeoutError:
            log.warning("handing over in the middle of a scaling step", scale_set=self._name)
        try:
            self._keep_session = True
            await _stop(serve)
        finally:
            if paused:
                self.scaler.resume()

    async def _serve(self) -> None:
        """The session loop; returns when a lost session turns out to be a lost lease.

        The session is the scale set's GitHub-side lock: the scaler (which reconciles and may
        release a predecessor's leftovers) starts only once this replica holds it. A deleted
        scale set is waited for until it exists again (``pulumi up`` recreates it).
        """
        scaler_task: asyncio.Task[None] | None = None
        try:
            while True:
                try:
                    await self._open()
                    if not await self._elector.record_session(self.session_id):
                        return
                    if scaler_task is None:
                        scaler_task = asyncio.create_task(
                            self.scaler.run(), name=f"scaler-{self._name}"
                        )
                    await self._poll()
                except SessionNotFoundError:
                    self._set_session(None)
                    if not await self._elector.confirm():
                        return  # deleted by the replica that took the lease: never recreate
                    log.warning("the session expired; opening a new one", scale_set=self._name)
                    self._session_event("recreated")
                except ScaleSetNotFoundError:
                    self._set_session(None)
                    await _stop(scaler_task)
                    scaler_task = None
                    found = await self._wait_for_scale_set()
                    if found.id != self.scaler.ss_id:
                        await self.scaler.rebind(found)
        finally:
            await _stop(scaler_task)
            await self._close()

    @property
    def session_id(self) -> str | None:
        return self.session.session_id if self.session is not None else None

    async def _wait_for_scale_set(self) -> ScaleSet:
        """The scale set was deleted on GitHub: look it up again (by name when configured so,
        which finds a recreated one under its new id) until it exists."""
        deleted = self.scaler.scale_set
        log.error(
            "the scale set was deleted on GitHub; waiting for it to exist again",
            scale_set=self._name,
            scale_set_id=deleted.id,
            hint="recreate it (`pulumi up`)"
            + (", then set scale_sets[].scale_set_id to its new id" if self._by_id else ""),
        )
        backoff = Backoff(cap=self._settings.max_backoff_seconds)
        while True:
            try:
                found = await find_scale_set(self._client, self.scaler.config)
            except ScaleSetError as exc:
                if not is_transient(exc):
                    raise
                found = None
            if found is not None:
                log.info("the scale set exists again", scale_set=self._name, scale_set_id=found.id)
                return found
            await asyncio.sleep(backoff.failed())

    @property
    def _by_id(self) -> bool:
        return self.scaler.config.scale_set_id is not None

    def _set_session(self, session: MessageSession | None) -> None:
        self.session = session
        labels = self._metrics.scale_set_labels(self._name)
        self._metrics.session_ready.labels(*labels).set(1 if session else 0)

    async def _open(self) -> None:
        session = await open_session(
            self._client,
            self.scaler.scale_set,
            self._owner,
            conflict_timeout=self._settings.session_conflict_timeout_seconds,
            backoff=Backoff(cap=self._settings.max_backoff_seconds),
            on_event=self._session_event,
            gate=self._pacing.opens,
        )
        self._set_session(session)
        if session.statistics is not None:
            self._metrics.record_statistics(self._name, session.statistics)
            self.scaler.set_statistics(session.statistics)

    async def _close(self) -> None:
        session = self.session
        self._set_session(None)
        if session is None or self._keep_session:
            return
        # Set until the deletion succeeds: a stop that has to cut it short reports it.
        self.undeleted_session = session.session_id
        async with self._pacing.closes:
            deleted = await close_session(
                self._client, session.scale_set_id, session.session_id, self._name
            )
        if deleted:
            self.undeleted_session = None
            self._session_event("deleted")

    async def _poll(self) -> None:
        """Long-poll until the session is lost; transient failures are waited out."""
        last_message_id = 0
        while True:
            session = self.session
            assert session is not None
            try:
                poll = self._client.get_message(
                    session, last_message_id, max_capacity=self.scaler.config.max_runners
                )
                cut = self._phase.cut() if self._phase else 0.0
                self._phase = None
                if cut:
                    try:
                        async with asyncio.timeout(cut):  # never swallows a cancellation
                            message = await poll
                    except TimeoutError:
                        continue  # cut on purpose: the next poll returns at this set's phase
                else:
                    message = await poll
                if message is None:
                    self.scaler.wake()  # re-assert the desired count, as upstream does on 202
                    continue
                await self._apply(session, message)
                await self._client.delete_message(session, message.message_id)
                last_message_id = message.message_id
                self._backoff.succeeded()
                if message.jobs:
                    await asyncio.sleep(self._settings.message_batch_window_seconds)
            except UnauthorizedError:
                # The client already refreshed once; a second 401 means a token rotated
                # again in between: refresh explicitly (SessionNotFound ends this session).
                await self._client.refresh_message_session(session)
                self._session_event("refreshed")
            except (SessionNotFoundError, ScaleSetNotFoundError):
                raise  # a new session, or a deleted scale set the process cannot serve
            except Exception as exc:
                # Outages of GitHub or of the registry store: the message is not acknowledged
                # yet, so it comes again once they are over.
                if isinstance(exc, ScaleSetError) and not is_transient(exc):
                    raise
                delay = self._backoff.failed()
                log.warning(
                    "message handling failed, retrying",
                    scale_set=self._name,
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in=round(delay, 2),
                )
                await asyncio.sleep(delay)

    async def _apply(self, session: MessageSession, message: ScaleSetMessage) -> None:
        """Make the message's effects durable in the registry (before it is acknowledged)."""
        self._metrics.messages.labels(self._name).inc()
        if message.statistics is not None:
            self._metrics.record_statistics(self._name, message.statistics)
            # Before the job events: the statistics already count this message's completions,
            # so a scaler step in between sees too few runners (and waits), never too many.
            self.scaler.set_statistics(message.statistics)
        assigned = sum(1 for j in message.jobs if isinstance(j, JobAssigned))
        if assigned:
            self.scaler.jobs_assigned(assigned)  # demand, for the warm-capacity forecast
        available = [j.runner_request_id for j in message.jobs if isinstance(j, JobAvailable)]
        if available:
            acquired = await self._client.acquire_jobs(session, self.scaler.ss_id, available)
            log.info(
                "jobs acquired",
                scale_set=self._name,
                offered=len(available),
                acquired=len(acquired),
            )
        # Events of one runner stay in order; different runners are handled concurrently.
        per_runner: defaultdict[str, list[JobMessage]] = defaultdict(list)
        for job in message.jobs:
            if isinstance(job, JobStarted | JobCompleted):
                per_runner[job.runner_name].append(job)
        await asyncio.gather(*(self._apply_jobs(jobs) for jobs in per_runner.values()))

    async def _apply_jobs(self, jobs: list[JobMessage]) -> None:
        for job in jobs:
            if isinstance(job, JobStarted):
                await self.scaler.job_started(job)
            elif isinstance(job, JobCompleted):
                await self.scaler.job_completed(job)
