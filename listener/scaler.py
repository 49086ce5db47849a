"""Keeps one scale set's runners at the desired count, from the registry's point of view.

Scale-up: allocate never-reused names, reserve them in the registry (the conditional count is
what keeps the fleet at or below max, across restarts), fetch JIT configs in one bounded batch,
launch, record provider ids. Scale-down: only idle surplus runners, deregistered on GitHub
first (GitHub refuses if one just took a job). Job and runtime events release runners.
Every decision reads the registry; the cloud is listed only by reconciliation.

The desired count is ``min(max, assigned jobs + warm)``, where warm is what the scale set's
warm-capacity policy (:mod:`listener.warm`) wants now, ``min_runners`` at least. Deadlines
are on the event loop's clock, times of day on ``clock``: a replay runs both in virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog

from gha_scalesets.listener.config import ListenerSettings, ScaleSetConfig
from gha_scalesets.listener.metrics import ListenerMetrics
from gha_scalesets.listener.reconcile import Reconciler, retire_idle
from gha_scalesets.listener.registry.base import (
    Registry,
    RunnerRecord,
    RunnerState,
    UnknownRunnerError,
)
from gha_scalesets.listener.runtimes.base import RunnerPhase, RunnerSpec, Runtime, RuntimeEvent
from gha_scalesets.listener.scaling import (
    Backoff,
    desired_runners,
    runner_names,
    scale_up_count,
    surplus_idle,
)
from gha_scalesets.listener.warm import ProfileStore, WarmCapacity
from gha_scalesets.scaleset import (
    Client,
    JitConfigResult,
    JobCompleted,
    JobStarted,
    ScaleSet,
    Statistics,
)
from gha_scalesets.scaleset.errors import JobStillRunningError, RunnerNotFoundError, ScaleSetError

log = structlog.get_logger("listener.scaler")

# Without any trigger the scaler still re-checks this often (retries after failures, grace).
_IDLE_TICK_SECONDS = 10.0
# At rest (as many runners as desired, and a warm target that does not move with time)
# nothing changes without an event that wakes the scaler: the re-check is a safety net only,
# kept rare so that thousands of idle scale sets cost nothing.
_REST_TICK_SECONDS = 60.0
# How long a cleanly stopped runner keeps its slot while its JobCompleted may be in flight.
_JOB_COMPLETED_WAIT_SECONDS = 10.0


class Scaler:
    """The scaling side of one scale set; the session loop feeds it statistics and job events."""

    def __init__(
        self,
        scale_set: ScaleSet,
        config: ScaleSetConfig,
        settings: ListenerSettings,
        *,
        client: Client,
        registry: Registry,
        runtime: Runtime,
        metrics: ListenerMetrics,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
        profiles: ProfileStore | None = None,
    ) -> None:
        self.scale_set = scale_set
        self.config = config
        self._settings = settings
        self._client = client
        self._registry = registry
        self._runtime = runtime
        self._metrics = metrics
        self._clock = clock
        self._backoff = backoff or Backoff(cap=settings.max_backoff_seconds)
        self._labels = metrics.scale_set_labels(scale_set.name)
        self._wake = asyncio.Event()
        self._step = asyncio.Lock()  # held through one step: a handover waits for its end
        self._retry_at = 0.0
        self._at_rest = False  # the last step found exactly the desired runners
        self._desired: int | None = None
        self._assigned: int | None = None  # the latest statistics' totalAssignedJobs
        self._waiting_jobs = 0  # assigned to the scale set, not started by any runner
        self.warm = WarmCapacity(config.warm, config.min_runners, settings.runtime)
        self._profiles: ProfileStore = profiles or registry
        # While jobs wait, runners that never came online are looked for this often.
        self._stuck_interval = min(
            settings.launch_timeout_seconds / 10, settings.reconcile_interval_seconds
        )
        self._next_stuck_check = 0.0
        # Runners whose process stopped, held (state DONE) until JobCompleted or this deadline.
        self._stopped: dict[str, float] = {}
        self.reconciler = self._reconciler()
        metrics.min_runners.labels(*self._labels).set(config.min_runners)
        metrics.max_runners.labels(*self._labels).set(config.max_runners)

    def _reconciler(self) -> Reconciler:
        return Reconciler(
            self.ss_id,
            self.config.max_runners,
            client=self._client,
            registry=self._registry,
            runtime=self._runtime,
            forget=self._forget,
            launch_timeout=self._settings.launch_timeout_seconds,
            clock=self._clock,
        )

    @property
    def ss_id(self) -> int:
        return self.scale_set.id

    @staticmethod
    def _monotonic() -> float:
        return asyncio.get_running_loop().time()

    async def rebind(self, scale_set: ScaleSet) -> None:
        """Serve ``scale_set``, the recreation of the deleted one (call while not running).

        GitHub removed the deleted set's idle runners with it: they are stopped and their
        slots freed now. Busy ones finish their job and are freed by their exit event.
        """
        try:
            for record in await self._registry.list(self.ss_id):
                if record.state is not RunnerState.BUSY:
                    await self._drop_retired(record, record.provider_id)
        except Exception:  # serving the new scale set matters more than this cleanup
            log.exception("could not free the deleted scale set's runners", scale_set_id=self.ss_id)
        self.scale_set = scale_set
        self.reconciler = self._reconciler()
        self._stopped.clear()
        self._desired = self._assigned = None
        self._waiting_jobs = 0

    async def _drop_retired(self, record: RunnerRecord, provider_id: str | None) -> None:
        """Free a runner of a deleted scale set: there is nothing left of it on GitHub."""
        await self._registry.release(record.scale_set_id, record.runner_name)
        if provider_id is not None:
            await self._runtime.terminate([provider_id])

    @property
    def desired(self) -> int | None:
        """The last desired count, ``None`` before the first statistics arrived."""
        return self._desired

    def set_statistics(self, statistics: Statistics) -> int:
        """New statistics: recompute the desired count and wake the scaler."""
        self._waiting_jobs = max(0, statistics.total_assigned_jobs - statistics.total_running_jobs)
        self._assigned = statistics.total_assigned_jobs
        desired = self._update_desired()
        self._wake.set()
        return desired

    def _update_desired(self) -> int:
        """The desired count for the latest statistics and the warm target of now."""
        assert self._assigned is not None
        now = self._clock()
        target = self.warm.target(now)
        self._desired = desired_runners(target.runners, self.config.max_runners, self._assigned)
        self._metrics.desired_runners.labels(*self._labels).set(self._desired)
        self._metrics.warm_target.labels(*self._labels).set(target.runners)
        self._metrics.idle_budget.labels(*self._labels).set(self.warm.budget_minutes_per_hour(now))
        if target.forecast is not None:
            self._metrics.forecast_arrivals.labels(*self._labels).set(target.forecast.rate)
        return self._desired

    def jobs_assigned(self, count: int) -> None:
        """``count`` jobs were assigned to the scale set: demand, for the forecast."""
        self.warm.record_arrivals(self._clock(), count)
        self._metrics.job_arrivals.labels(self.scale_set.name).inc(count)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Converge until cancelled; reconcile at start and every ``reconcile_interval``."""
        await self._load_profile()
        async with self._step:
            await self._reconcile(startup=True)
        next_reconcile = self._monotonic() + self._settings.reconcile_interval_seconds
        while True:
            now = self._monotonic()
            tick = _REST_TICK_SECONDS if self._at_rest else _IDLE_TICK_SECONDS
            deadlines = [next_reconcile, now + tick, *self._stopped.values()]
            if self._retry_at > now:  # a past retry deadline must not turn this into a spin
                deadlines.append(self._retry_at)
            if self._waiting_jobs:
                deadlines.append(self._next_stuck_check)
            timeout = max(0.0, min(deadlines) - now)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that arrives as the wake-up does, and a stopped scaler would scale on.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()
            async with self._step:
                if self._monotonic() >= next_reconcile:
                    await self._reconcile(startup=False)
                    next_reconcile = self._monotonic() + self._settings.reconcile_interval_seconds
                try:
                    await self._release_stopped()
                    await self._replace_stuck()
                    await self.converge()
                except Exception:  # keep the daemon up: the next trigger or tick retries
                    log.exception("scaling failed", scale_set=self.scale_set.name)
                    self._retry_at = self._monotonic() + self._backoff.failed()
                await self._save_profile()

    async def pause(self) -> None:
        """Wait for the current step to end and start no other until :meth:`resume`."""
        await self._step.acquire()

    def resume(self) -> None:
        self._step.release()

    async def _load_profile(self) -> None:
        """Continue from the demand profile a predecessor (or an earlier run) saved."""
        if self.warm.forecast is None:
            return
        try:
            data = await self._profiles.load_profile(self.ss_id)
        except Exception as exc:  # learning starts over; scaling must not wait for it
            log.warning(
                "could not load the demand profile",
                scale_set=self.scale_set.name,
                error=f"{type(exc).__name__}: {exc}",
            )
            return
        loaded = self.warm.load_profile(data)
        log.info(
            "demand profile",
            scale_set=self.scale_set.name,
            source="stored" if loaded else "new (nothing usable stored)",
        )

    async def _save_profile(self) -> None:
        """Store the profile once a slot was learned (every 15 minutes at most)."""
        data = self.warm.profile_to_save()
        if data is None:
            return
        try:
            await self._profiles.save_profile(self.ss_id, data)
        except Exception as exc:  # kept in memory: the next round tries again
            log.warning(
                "could not save the demand profile",
                scale_set=self.scale_set.name,
                error=f"{type(exc).__name__}: {exc}",
            )
            return
        self.warm.profile_saved()

    async def _reconcile(self, *, startup: bool) -> None:
        # At startup nothing of this process is in flight yet: every unlaunched reservation
        # belongs to a predecessor that died mid-launch.
        cutoff = self._clock() - (0 if startup else self._settings.launch_timeout_seconds)
        try:
            repairs = await self.reconciler.run(in_flight_after=cutoff)
        except Exception:
            log.exception("reconciliation failed", scale_set=self.scale_set.name)
            return
        for kind, count in repairs.items():
            self._metrics.reconcile_repairs.labels(self.scale_set.name, kind).inc(count)

    async def _replace_stuck(self) -> None:
        if not self._waiting_jobs or self._monotonic() < self._next_stuck_check:
            return
        self._next_stuck_check = self._monotonic() + self._stuck_interval
        replaced = await self.reconciler.replace_stuck(self._waiting_jobs)
        if replaced:
            self._metrics.reconcile_repairs.labels(self.scale_set.name, "never_online").inc(
                replaced
            )

    async def converge(self) -> None:
        """One step toward the desired count."""
        self._at_rest = False
        if self._assigned is None or self._monotonic() < self._retry_at:
            return
        self._update_desired()
        assert self._desired is not None
        current = await self._registry.count(self.ss_id)
        self._metrics.managed_runners.labels(*self._labels).set(current)
        warm = max(0, current - self._assigned)
        self._metrics.warm_runners.labels(*self._labels).set(warm)
        spent = self.warm.ledger.sample(self._clock(), warm)
        if spent:
            self._metrics.idle_runner_seconds.labels(self.scale_set.name).inc(spent)
        wanted = scale_up_count(self._desired, current, self.config.max_runners)
        # A warm policy with schedules or a forecast moves the target with time: never at rest.
        timeless = not self.warm.policy.schedules and self.warm.policy.adaptive is None
        self._at_rest = current == self._desired and not self._stopped and timeless
        if wanted:
            log.info(
                "scaling up",
                scale_set=self.scale_set.name,
                desired=self._desired,
                current=current,
                adding=wanted,
            )
            await self._scale_up(wanted)
        elif current > self._desired:
            await self._scale_down()

    async def _scale_up(self, count: int) -> None:
        first = await self._registry.next_sequence(self.ss_id, count)
        names = await self._registry.reserve(
            self.ss_id, runner_names(self.scale_set.name, first, count), self.config.max_runners
        )
        if not names:
            return
        started = self._monotonic()
        fetched = started
        failed = 0
        # Runners launch as their configs arrive: under GitHub's secondary rate limits a big
        # batch takes minutes, and the first jobs should not wait for the last config.
        async for results in self._client.stream_jit_configs(
            self.ss_id, names, concurrency=self._settings.jit_concurrency
        ):
            fetched = self._monotonic()
            failed += await self._launch(results)
        self._metrics.jit_batch_size.labels(self.scale_set.name).observe(len(names))
        self._metrics.jit_batch_duration.labels(self.scale_set.name).observe(fetched - started)
        log.info(
            "scaled up",
            scale_set=self.scale_set.name,
            requested=count,
            reserved=len(names),
            launched=len(names) - failed,
        )
        if failed:
            self._retry_at = self._monotonic() + self._backoff.failed()
        else:
            self._backoff.succeeded()

    async def _launch(self, results: list[JitConfigResult]) -> int:
        """Launch the runners of ``results``, free the slots of failures; returns their count."""
        specs = [
            RunnerSpec(self.ss_id, self.scale_set.name, r.name, r.runner.id, r.config)
            for r in results
            if r.ok and r.runner is not None and r.config is not None
        ]
        jit_failed = [r for r in results if not r.ok]
        for failure in jit_failed:
            log.warning(
                "jit config failed",
                runner=failure.name,
                error=str(failure.error),
                scale_set=self.scale_set.name,
            )
        await asyncio.gather(*(self._registry.release(self.ss_id, r.name) for r in jit_failed))
        if jit_failed:
            self._metrics.launch_failures.labels(self.scale_set.name, "jit").inc(len(jit_failed))
        launched = await self._runtime.launch(specs) if specs else []
        failed = len(jit_failed)
        updates = []
        for spec, result in zip(specs, launched, strict=True):
            if result.provider_id is not None:
                updates.append(self._record_launch(spec, result.provider_id))
            else:
                failed += 1
                log.warning(
                    "runner launch failed",
                    runner=spec.runner_name,
                    error=result.error,
                    retryable=result.retryable,
                )
                self._metrics.launch_failures.labels(self.scale_set.name, "launch").inc()
                updates.append(self._forget(spec.runner_name, spec.runner_id, None))
        await asyncio.gather(*updates)
        return failed

    async def _record_launch(self, spec: RunnerSpec, provider_id: str) -> None:
        try:
            await self._registry.update(
                self.ss_id,
                spec.runner_name,
                state=RunnerState.LAUNCHED,
                runner_id=spec.runner_id,
                provider_id=provider_id,
            )
        except UnknownRunnerError:
            # Its runtime exit event was handled first: the runner is already gone.
            await self._runtime.terminate([provider_id])

    async def _scale_down(self) -> None:
        records = await self._registry.list(self.ss_id)
        victims = surplus_idle(
            records, self._desired or 0, self._clock(), self._settings.scale_down_grace_seconds
        )
        removed = 0
        for record in victims:
            removed += await retire_idle(self._client, self._forget, record)
        if removed:
            self._metrics.scaled_down.labels(self.scale_set.name).inc(removed)
            log.info("scaled down", scale_set=self.scale_set.name, removed=removed)

    async def _forget(self, name: str, runner_id: int | None, provider_id: str | None) -> None:
        """Drop a runner: deregister it on GitHub (if given an id), free its slot and, if this
        call freed it, stop it: whoever freed the slot first (a JobCompleted racing a scale-down
        that read the runner before) already asked the runtime, one delete per runner."""
        if runner_id is not None:
            try:
                await self._client.remove_runner(runner_id)
            except (RunnerNotFoundError, JobStillRunningError):
                pass  # already gone, or GitHub ends it with its job
            except ScaleSetError as exc:
                log.warning("could not remove runner on GitHub", runner=name, error=str(exc))
        if not await self._registry.release(self.ss_id, name):
            return
        self._wake.set()
        if provider_id is not None:
            await self._runtime.terminate([provider_id])

    async def job_started(self, job: JobStarted) -> None:
        self._metrics.record_job_started(job)
        if not job.runner_name:
            return
        try:
            await self._registry.update(
                self.ss_id,
                job.runner_name,
                state=RunnerState.BUSY,
                job_id=job.job_id or str(job.runner_request_id),
            )
        except UnknownRunnerError:
            log.debug("job started on a runner not in the registry", runner=job.runner_name)

    async def job_completed(self, job: JobCompleted) -> None:
        self._metrics.record_job_completed(job, job.result or "unknown")
        if not job.runner_name:
            return  # a cancelled assignment: no runner involved
        self._stopped.pop(job.runner_name, None)
        record = await self._registry.get(self.ss_id, job.runner_name)
        if record is not None:
            # Ephemeral runners deregister themselves after their job: no GitHub call needed.
            await self._forget(record.runner_name, None, record.provider_id)

    async def runner_ended(self, record: RunnerRecord, event: RuntimeEvent) -> None:
        """The runtime says the runner's process/instance/task/pod is gone."""
        log.info(
            "runner ended",
            runner=record.runner_name,
            phase=event.phase.value,
            reason=event.reason,
            state=record.state.value,
        )
        if record.scale_set_id != self.ss_id:
            await self._drop_retired(record, event.provider_id)
            return
        if event.phase is RunnerPhase.STOPPED and record.provider_id is not None:
            # An ephemeral runner exits cleanly after its job (or once deregistered). The
            # statistics count that job until JobCompleted arrives (possibly after its
            # JobStarted): freeing the slot now would start a runner for a job that is done.
            # Whoever frees the slot (JobCompleted, or the deadline) also deletes what is left
            # of the runner: one delete per runner, whichever comes first.
            with contextlib.suppress(UnknownRunnerError):  # JobCompleted freed it meanwhile
                await self._registry.update(self.ss_id, record.runner_name, state=RunnerState.DONE)
                self._stopped[record.runner_name] = self._monotonic() + _JOB_COMPLETED_WAIT_SECONDS
                self._wake.set()
            return
        # A crashed runner (or one that ended before its launch was even recorded, so
        # without a job) may still be registered and would attract a job.
        await self._forget(record.runner_name, record.runner_id, event.provider_id)

    async def _release_stopped(self) -> None:
        """Free the slots of stopped runners whose JobCompleted never came: they had no job
        and may still be registered (an instance stopped from outside, say)."""
        now = self._monotonic()
        for name in [n for n, deadline in self._stopped.items() if deadline <= now]:
            del self._stopped[name]
            record = await self._registry.get(self.ss_id, name)
            if record is not None and record.state is RunnerState.DONE:
                await self._forget(name, record.runner_id, record.provider_id)
