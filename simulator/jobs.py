"""Job lifecycle: queue -> (available ->) assigned -> running -> completed, with reassignment.

- A queued job goes to the first scale set (lowest id) whose labels, with its name always
  among them, include all the job's labels, whose scope covers the job's repository, that
  has a live session which has polled at least once, and whose load (available + assigned +
  running) is below the session's last ``X-ScaleSetMaxCapacity``.
- github.com mode emits ``JobAssigned``. GHES mode (``ghes_acquire``) emits ``JobAvailable``;
  ``acquirejobs`` turns it into an assignment, and an offer not acquired within the assign
  timeout goes back to the queue silently.
- A runner of the scale set takes the oldest assigned job (``JobStarted``) and reports it done
  (``JobCompleted`` with the job's result); the ephemeral runner is then deregistered.
- An assignment no runner takes within ``assign_timeout * 2**reassignments`` is cancelled
  (``JobCompleted`` ``canceled``, no runner fields) and requeued, at most
  ``max_reassignments`` times; after that the job ends ``canceled``.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections import Counter
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING

from gha_scalesets.simulator import wire
from gha_scalesets.simulator.aio import Timers
from gha_scalesets.simulator.clock import Clock
from gha_scalesets.simulator.config import SimulatorConfig
from gha_scalesets.simulator.model import Job, JobState, Runner, ScaleSet

if TYPE_CHECKING:
    from gha_scalesets.simulator.world import World

FIRST_REQUEST_ID = 1001
FIRST_WORKFLOW_RUN_ID = 7001


class JobBoard:
    def __init__(
        self,
        world: World,
        config: SimulatorConfig,
        clock: Clock,
        timers: Timers,
        rng: random.Random,
    ) -> None:
        self._world = world
        self._config = config
        self._clock = clock
        self._timers = timers
        self._rng = rng
        self._request_ids = itertools.count(FIRST_REQUEST_ID)
        self._run_ids = itertools.count(FIRST_WORKFLOW_RUN_ID)
        self.jobs: dict[int, Job] = {}
        self.queued: dict[int, Job] = {}
        self.counts: Counter[JobState] = Counter()
        self.reassigned_total = 0

    # -- queueing and dispatch ---------------------------------------------------------------

    def queue(
        self, labels: list[str], count: int, duration: float, repository: str, result: str
    ) -> list[Job]:
        run_id = next(self._run_ids)
        now = self._clock.now()
        created = []
        for _ in range(count):
            job = Job(
                request_id=next(self._request_ids),
                job_id=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
                labels=[label.lower() for label in labels],
                repository=repository,
                duration=duration,
                result=result,
                workflow_run_id=run_id,
                queue_time=now,
            )
            self.jobs[job.request_id] = job
            self.queued[job.request_id] = job
            self.counts[JobState.QUEUED] += 1
            created.append(job)
        self.dispatch()
        return created

    def dispatch(self) -> None:
        """Hand queued jobs, oldest first, to scale sets with spare capacity."""
        if not self.queued:
            return
        spare: dict[ScaleSet, int] = {}
        for ss in self._world.scale_sets.values():
            session = self._world.live_session(ss)
            if session is not None and session.max_capacity is not None:
                room = session.max_capacity - len(ss.jobs)
                if room > 0:
                    spare[ss] = room
        for job in list(self.queued.values()):
            if not spare:
                return
            target = next((ss for ss in spare if ss.accepts(job)), None)
            if target is None:
                continue
            spare[target] -= 1
            if not spare[target]:
                del spare[target]
            if self._config.ghes_acquire:
                self._offer(job, target)
            else:
                self._assign(job, target)

    def _set_state(self, job: Job, state: JobState) -> None:
        self.counts[job.state] -= 1
        self.counts[state] += 1
        job.state = state

    def _attach(self, job: Job, ss: ScaleSet, state: JobState) -> None:
        self.queued.pop(job.request_id, None)
        self._set_state(job, state)
        job.scale_set = ss
        job.epoch += 1
        ss.jobs[job.request_id] = job

    def _detach(self, job: Job) -> ScaleSet | None:
        ss, job.scale_set = job.scale_set, None
        if ss is not None:
            ss.jobs.pop(job.request_id, None)
            ss.signal.notify()
        return ss

    def _offer(self, job: Job, ss: ScaleSet) -> None:
        self._attach(job, ss, JobState.AVAILABLE)
        acquire_path = (
            f"_services/pipelines/{ss.tenant.id}/_apis/runtime/runnerscalesets/{ss.id}/acquirejobs"
        )
        self._emit(ss, "JobAvailable", job, acquireJobUrl=acquire_path)
        deadline = self._clock.now() + self._config.assign_timeout_seconds
        self._timers.schedule(deadline, partial(self._offer_expired, job, job.epoch))

    def _offer_expired(self, job: Job, epoch: int) -> None:
        if job.epoch == epoch and job.state is JobState.AVAILABLE:
            self._detach(job)
            self._requeue(job)
            self.dispatch()

    def _assign(self, job: Job, ss: ScaleSet, *, acquired: bool = False) -> None:
        self._attach(job, ss, JobState.ASSIGNED)
        job.acquired = acquired
        now = self._clock.now()
        job.scale_set_assign_time = now
        self._emit(ss, "JobAssigned", job)
        timeout = self._config.assign_timeout_seconds * 2**job.reassignments
        self._timers.schedule(now + timeout, partial(self._assignment_expired, job, job.epoch))

    def _assignment_expired(self, job: Job, epoch: int) -> None:
        if job.epoch != epoch or job.state is not JobState.ASSIGNED:
            return
        job.finish_time = self._clock.now()
        ss = self._detach(job)
        if ss is not None:
            self._emit(ss, "JobCompleted", job, result="canceled")
        job.reassignments += 1
        if job.reassignments > self._config.max_reassignments:
            self._set_state(job, JobState.CANCELED)
        else:
            self.reassigned_total += 1
            self._requeue(job)
        self.dispatch()

    def _requeue(self, job: Job) -> None:
        self._set_state(job, JobState.QUEUED)
        job.acquired = False
        job.scale_set_assign_time = job.finish_time = None
        self.queued[job.request_id] = job
        # keep the queue oldest-first: a requeued job goes back to its original place
        self.queued = dict(sorted(self.queued.items()))

    def acquire(self, ss: ScaleSet, request_ids: Iterable[int]) -> list[int]:
        """GHES ``acquirejobs``: the ids actually acquired (offered to ``ss``, not yet taken)."""
        acquired = []
        for request_id in request_ids:
            job = self.jobs.get(request_id)
            if job is not None and job.state is JobState.AVAILABLE and job.scale_set is ss:
                self._assign(job, ss, acquired=True)
                acquired.append(request_id)
        return acquired

    # -- runners -----------------------------------------------------------------------------

    def start_next(self, runner: Runner) -> Job | None:
        """Give ``runner`` the oldest assigned, unstarted job of its scale set."""
        waiting = [j for j in runner.scale_set.jobs.values() if j.state is JobState.ASSIGNED]
        if not waiting:
            return None
        job = min(waiting, key=lambda j: (j.scale_set_assign_time or 0.0, j.request_id))
        self._set_state(job, JobState.RUNNING)
        job.runner, runner.job = runner, job
        job.runner_assign_time = self._clock.now()
        self._emit(runner.scale_set, "JobStarted", job, runnerId=runner.id, runnerName=runner.name)
        return job

    def complete(self, runner: Runner, job: Job) -> None:
        self._set_state(job, JobState.COMPLETED)
        job.finish_time = self._clock.now()
        runner.job = None
        ss = self._detach(job)
        if ss is not None and not ss.deleted:
            self._emit(
                ss,
                "JobCompleted",
                job,
                result=job.result,
                runnerId=runner.id,
                runnerName=runner.name,
            )
        self.dispatch()

    def release_scale_set(self, ss: ScaleSet) -> None:
        """A deleted scale set gives back jobs no runner started; running ones finish."""
        for job in list(ss.jobs.values()):
            if job.state in (JobState.AVAILABLE, JobState.ASSIGNED):
                self._detach(job)
                self._requeue(job)
        self.dispatch()

    def _emit(self, ss: ScaleSet, message_type: str, job: Job, **extra: object) -> None:
        ss.queue.emit(wire.job_message(message_type, job, **extra))
        ss.signal.notify()
