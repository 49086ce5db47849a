"""Periodic reconciliation of registry, runtime and GitHub for one scale set.

The only place that lists the runtime (cloud describe/list calls). It repairs what events and
messages can miss: launches whose provider id was never recorded (crash mid-launch), runners
that vanished without an event (lost), runtime runners the registry does not know (orphans:
adopted when GitHub still knows them and there is room, else stopped), long-idle runners
GitHub no longer knows (ghosts), and runners that never came online (still not busy
``launch_timeout`` after launch while assigned jobs wait): they hold a slot GitHub cannot use,
and its job would be cancelled after the last reassignment, so they are replaced.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable

import structlog

from gha_scalesets.listener.registry.base import Registry, RunnerRecord, RunnerState
from gha_scalesets.listener.runtimes.base import RunnerPhase, Runtime, RuntimeRunner
from gha_scalesets.scaleset import Client
from gha_scalesets.scaleset.errors import JobStillRunningError, RunnerNotFoundError

log = structlog.get_logger("listener.reconcile")

_ALIVE = frozenset({RunnerPhase.PENDING, RunnerPhase.RUNNING})
_IDLE = frozenset({RunnerState.LAUNCHED, RunnerState.IDLE})

# (runner name, GitHub runner id to deregister or None, provider id to stop or None)
Forget = Callable[[str, int | None, str | None], Awaitable[None]]


async def retire_idle(client: Client, forget: Forget, record: RunnerRecord) -> bool:
    """Deregister an idle runner on GitHub first, then drop it; False if it took a job
    meanwhile (GitHub refuses to remove a busy runner) and must be kept."""
    if record.runner_id is not None:
        try:
            await client.remove_runner(record.runner_id)
        except JobStillRunningError:
            return False
        except RunnerNotFoundError:
            pass
    await forget(record.runner_name, None, record.provider_id)
    return True


class Reconciler:
    """Compares the three views of one scale set's runners and repairs the differences."""

    def __init__(
        self,
        scale_set_id: int,
        max_runners: int,
        *,
        client: Client,
        registry: Registry,
        runtime: Runtime,
        forget: Forget,
        launch_timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ss = scale_set_id
        self._max = max_runners
        self._launch_timeout = launch_timeout
        self._client = client
        self._registry = registry
        self._runtime = runtime
        self._forget = forget
        self._clock = clock

    async def run(self, in_flight_after: float) -> Counter[str]:
        """Repair and return counts by kind; records created after ``in_flight_after`` are
        left alone (their launch may still be in progress or not yet listed by the cloud)."""
        records = await self._registry.list(self._ss)
        listed = await self._runtime.list_runners(self._ss)
        # A cloud runner is the record's by the provider id the launch recorded, or (launched
        # but not recorded) by the runner name the runtime knows for it.
        by_id = {r.provider_id: r for r in listed}
        by_name = {r.runner_name: r for r in listed if r.runner_name}
        matched: set[str] = set()
        repairs: Counter[str] = Counter()
        for record in records:
            runner = by_id.get(record.provider_id or "") or by_name.get(record.runner_name)
            if runner is not None:
                matched.add(runner.provider_id)
            if runner is not None and runner.phase in _ALIVE:
                repairs[await self._check_alive(record, runner, in_flight_after)] += 1
            elif record.created_at <= in_flight_after:
                name = record.runner_name
                runner_id = record.runner_id or await self._github_id(name)
                await self._forget(name, runner_id, record.provider_id)
                repairs["lost"] += 1
        for runner in listed:
            if runner.provider_id not in matched:
                repairs[await self._handle_orphan(runner)] += 1
        repairs["count_corrected"] += abs(await self._registry.repair_count(self._ss))
        repairs = +repairs  # drop zero counts
        repairs.pop("ok", None)
        if repairs:
            log.info("reconciliation repaired the registry", scale_set_id=self._ss, **repairs)
        return repairs

    async def _github_id(self, name: str) -> int | None:
        registered = await self._client.get_runner_by_name(name)
        return registered.id if registered is not None else None

    async def _check_alive(
        self, record: RunnerRecord, runner: RuntimeRunner, in_flight_after: float
    ) -> str:
        if record.provider_id != runner.provider_id:
            # Launched, but the predecessor died before recording it.
            changes: dict[str, object] = {"provider_id": runner.provider_id}
            if record.state is RunnerState.RESERVED:
                changes["state"] = RunnerState.LAUNCHED
            await self._registry.update(self._ss, record.runner_name, **changes)
            return "launch_recorded"
        if record.state in _IDLE and record.updated_at <= in_flight_after:
            registered = await self._registered(record)
            if not registered:
                await self._forget(record.runner_name, None, runner.provider_id)
                return "ghost"
        return "ok"

    async def replace_stuck(self, waiting_jobs: int) -> int:
        """Drop up to ``waiting_jobs`` runners still not busy ``launch_timeout`` after their
        launch (or coming up), oldest first; returns how many.

        Called while assigned jobs wait: an online runner takes one within seconds, so these
        never came online (a hung boot, a broken image). Freeing their slots lets the scaler
        launch replacements before GitHub gives up reassigning the jobs and cancels them.
        """
        stuck_before = self._clock() - self._launch_timeout
        stuck = [
            r
            for r in await self._registry.list(self._ss)
            if r.state in _IDLE and r.updated_at <= stuck_before
        ]
        replaced = 0
        for record in sorted(stuck, key=lambda r: r.updated_at)[:waiting_jobs]:
            if await retire_idle(self._client, self._forget, record):
                replaced += 1
                log.warning(
                    "runner never came online, replacing it",
                    runner=record.runner_name,
                    scale_set_id=self._ss,
                    launch_timeout=self._launch_timeout,
                    hint="check the runner image/boot logs of this runtime",
                )
        return replaced

    async def _registered(self, record: RunnerRecord) -> bool:
        if record.runner_id is None:
            return await self._github_id(record.runner_name) is not None
        try:
            await self._client.get_runner(record.runner_id)
        except RunnerNotFoundError:
            return False
        return True

    async def _handle_orphan(self, runner: RuntimeRunner) -> str:
        if runner.phase not in _ALIVE:
            await self._runtime.terminate([runner.provider_id])  # cleans up what is left
            return "stale_cleaned"
        # Without a name (launched in a batch, never recorded) it cannot be adopted.
        runner_id = await self._github_id(runner.runner_name) if runner.runner_name else None
        if runner_id is None:
            await self._runtime.terminate([runner.provider_id])
            return "orphan_stopped"
        if await self._registry.reserve(self._ss, [runner.runner_name], self._max):
            await self._registry.update(
                self._ss,
                runner.runner_name,
                state=RunnerState.LAUNCHED,
                runner_id=runner_id,
                provider_id=runner.provider_id,
            )
            return "orphan_adopted"
        await self._forget(runner.runner_name, runner_id, runner.provider_id)
        return "orphan_over_max"
