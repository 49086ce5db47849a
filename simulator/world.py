"""All mutable state of one simulator: tenants, scale sets, sessions, runners and jobs.

``POST /_sim/reset`` replaces the whole :class:`World`; nothing lives in module globals, so
several simulators can share a process. Methods are synchronous and run on the event loop;
they raise :class:`~simulator.errors.ApiError` for answers the service would give.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from gha_scalesets.simulator import errors
from gha_scalesets.simulator.aio import Timers
from gha_scalesets.simulator.auth import Authority
from gha_scalesets.simulator.clock import Clock
from gha_scalesets.simulator.config import DEFAULT_GROUP, SimulatorConfig
from gha_scalesets.simulator.errors import PlainError, VssError
from gha_scalesets.simulator.jit import JitConfig
from gha_scalesets.simulator.jobs import JobBoard
from gha_scalesets.simulator.ledger import SecretLedger
from gha_scalesets.simulator.model import (
    JobState,
    Runner,
    RunnerGroup,
    ScaleSet,
    Scope,
    Session,
    Tenant,
)
from gha_scalesets.simulator.wire import get_ci

FIRST_MESSAGE_ID = 100_000_001
_SETTING_KEYS = ("ephemeral", "isElastic", "disableUpdate")


class World:
    def __init__(
        self,
        config: SimulatorConfig,
        clock: Clock,
        timers: Timers,
        generation: int,
        ledger: SecretLedger,
    ) -> None:
        self.config = config
        self.clock = clock
        rng = random.Random(f"{config.seed}:{generation}")
        self.auth = Authority(config, clock, rng, ledger)
        self._ledger = ledger
        self.jobs = JobBoard(self, config, clock, timers, rng)
        self._rng = rng
        self.groups = [RunnerGroup(1, DEFAULT_GROUP, True)] + [
            RunnerGroup(i, name, False) for i, name in enumerate(config.runner_groups, start=2)
        ]
        self.tenants: dict[str, Tenant] = {}
        self.scale_sets: dict[int, ScaleSet] = {}
        self.runners: dict[int, Runner] = {}
        self.sessions: dict[str, Session] = {}
        self.names_issued: set[str] = set()  # every runner name a JIT config was issued for
        self.duplicate_names = 0
        self._scale_set_ids = itertools.count(1)
        self._runner_ids = itertools.count(1)
        self._next_message_id = FIRST_MESSAGE_ID

    def close(self) -> None:
        """Retire this world: every waiter wakes up and finds its scale set gone."""
        for ss in self.scale_sets.values():
            ss.deleted = True
            ss.signal.notify()
        for runner in self.runners.values():
            runner.removed = True

    # -- tenants and groups ------------------------------------------------------------------

    def tenant_for(self, scope: Scope) -> Tenant:
        tenant_id = hashlib.sha256(str(scope).encode()).hexdigest()[:16]
        return self.tenants.setdefault(tenant_id, Tenant(tenant_id, scope))

    def find_groups(self, name: str | None) -> list[RunnerGroup]:
        if name is None:
            return list(self.groups)
        return [g for g in self.groups if g.name.lower() == name.lower()]

    def group_size(self, group: RunnerGroup) -> int:
        return sum(1 for r in self.runners.values() if r.scale_set.group is group)

    # -- scale sets --------------------------------------------------------------------------

    def scale_set(self, tenant: Tenant, scale_set_id: int) -> ScaleSet:
        ss = self.scale_sets.get(scale_set_id)
        if ss is None or ss.tenant is not tenant:
            raise VssError(
                404,
                errors.SCALE_SET_NOT_FOUND,
                f"The runner scale set with id {scale_set_id} was not found.",
            )
        return ss

    def find_scale_sets(
        self, tenant: Tenant, group_id: int | None, name: str | None
    ) -> list[ScaleSet]:
        return [
            ss
            for ss in self.scale_sets.values()
            if ss.tenant is tenant
            and (group_id is None or ss.group.id == group_id)
            and (name is None or ss.name.lower() == name.lower())
        ]

    def _group(self, group_id: Any) -> RunnerGroup:
        for group in self.groups:
            if group.id == group_id:
                return group
        raise VssError(
            404, errors.RUNNER_GROUP_NOT_FOUND, f"No runner group found with id {group_id}."
        )

    def _check_name_free(
        self, tenant: Tenant, group: RunnerGroup, name: str, me: ScaleSet | None
    ) -> None:
        for other in self.find_scale_sets(tenant, group.id, name):
            if other is not me:
                raise VssError(
                    409,
                    errors.SCALE_SET_EXISTS,
                    f"A runner scale set named '{name}' already exists in runner group "
                    f"'{group.name}'.",
                )

    @staticmethod
    def _labels(raw: Any, name: str) -> list[dict[str, str]]:
        if not raw:
            return [{"type": "System", "name": name}]
        if not isinstance(raw, list) or not all(
            isinstance(label, Mapping) and get_ci(label, "name") for label in raw
        ):
            raise _invalid("labels must be a list of objects with a non-empty 'name'")
        return [
            {"type": str(get_ci(label, "type") or "System"), "name": str(get_ci(label, "name"))}
            for label in raw
        ]

    @staticmethod
    def _settings(raw: Any) -> dict[str, bool]:
        settings = {"ephemeral": True, "isElastic": False, "disableUpdate": False}
        if isinstance(raw, Mapping):
            for key in _SETTING_KEYS:
                value = get_ci(raw, key)
                if value is not None:
                    settings[key] = bool(value)
        return settings

    def create_scale_set(self, tenant: Tenant, body: Mapping[str, Any]) -> ScaleSet:
        name = get_ci(body, "name")
        if not isinstance(name, str) or not name.strip():
            raise _invalid("the runner scale set needs a non-empty 'name'")
        group = self._group(get_ci(body, "runnerGroupId") or 1)
        self._check_name_free(tenant, group, name, None)
        ss = ScaleSet(
            id=next(self._scale_set_ids),
            tenant=tenant,
            name=name,
            group=group,
            labels=self._labels(get_ci(body, "labels"), name),
            settings=self._settings(get_ci(body, "RunnerSetting")),
            created_on=self.clock.now(),
        )
        self.scale_sets[ss.id] = ss
        self.jobs.dispatch()
        return ss

    def update_scale_set(
        self, tenant: Tenant, scale_set_id: int, body: Mapping[str, Any]
    ) -> ScaleSet:
        """PATCH as the real service answers upstream's Go bodies (docs/corporate-networks.md).

        Go omits an empty ``name``, ``runnerGroupId`` or ``labels`` and always sends
        ``RunnerSetting``. ARC's controller sent name-only and group-only bodies for years, so an
        omitted name or group keeps its value. Labels and settings are replaced: omitted labels
        mean the name only (as on create) and ``RunnerSetting`` is taken whole, so a client that
        sends a partial body counting on a merge loses them here as it would on GitHub.
        """
        ss = self.scale_set(tenant, scale_set_id)
        name = get_ci(body, "name") or ss.name
        group = self._group(get_ci(body, "runnerGroupId") or ss.group.id)
        self._check_name_free(tenant, group, name, ss)
        ss.name, ss.group = name, group
        ss.labels = self._labels(get_ci(body, "labels"), name)
        ss.settings = self._settings(get_ci(body, "RunnerSetting"))
        self.jobs.dispatch()
        return ss

    def delete_scale_set(self, tenant: Tenant, scale_set_id: int) -> None:
        ss = self.scale_set(tenant, scale_set_id)
        del self.scale_sets[ss.id]
        # the session stays attached so its listener's next calls get a clear 404
        ss.deleted = True
        for runner in list(ss.runners.values()):
            if runner.job is None:
                self._remove_runner(runner)
        self.jobs.release_scale_set(ss)
        ss.signal.notify()

    # -- sessions ----------------------------------------------------------------------------

    def live_session(self, ss: ScaleSet) -> Session | None:
        """The scale set's session unless its owner has been silent longer than the TTL."""
        session = ss.session
        if session is None:
            return None
        silent = self.clock.now() - session.last_seen
        if session.polls_in_flight == 0 and silent > self.config.session_ttl_seconds:
            self._end_session(session)
            return None
        return session

    def _end_session(self, session: Session) -> None:
        self.sessions.pop(session.id, None)
        if session.scale_set.session is session:
            session.scale_set.session = None
        session.scale_set.signal.notify()

    def create_session(
        self, tenant: Tenant, scale_set_id: int, owner: str, credential: str
    ) -> Session:
        """Open the scale set's session; its queue token counts against ``credential``."""
        ss = self.scale_set(tenant, scale_set_id)
        current = self.live_session(ss)
        if current is not None:
            raise VssError(
                409,
                errors.SESSION_CONFLICT,
                f"The runner scale set {ss.name} already has an active session for owner "
                f"{current.owner}.",
            )
        session_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        session = Session(
            id=session_id,
            owner=owner,
            scale_set=ss,
            mq_token=self.auth.issue_mq_token(session_id, credential),
            last_seen=self.clock.now(),
        )
        ss.session = session
        self.sessions[session_id] = session
        return session

    def _own_session(self, tenant: Tenant, scale_set_id: int, session_id: str) -> Session | None:
        ss = self.scale_set(tenant, scale_set_id)
        session = self.sessions.get(session_id)
        if session is None or session.scale_set is not ss or self.live_session(ss) is not session:
            return None
        return session

    def refresh_session(
        self, tenant: Tenant, scale_set_id: int, session_id: str, credential: str
    ) -> Session:
        """A new queue token; any credential of the tenant may refresh (GitHub's rule is not
        documented), and the new token counts against the refreshing one."""
        session = self._own_session(tenant, scale_set_id, session_id)
        if session is None:
            raise VssError(
                404,
                errors.RUNNER_ADMIN,
                f"Cannot refresh session {session_id}: the session ID does not exist.",
            )
        session.mq_token = self.auth.issue_mq_token(session.id, credential)
        session.last_seen = self.clock.now()
        return session

    def delete_session(self, tenant: Tenant, scale_set_id: int, session_id: str) -> None:
        session = self._own_session(tenant, scale_set_id, session_id)
        if session is None:
            raise VssError(
                400,
                errors.SESSION_EXPIRED,
                f"The session identifier {session_id} is not valid.",
            )
        self._end_session(session)

    def session_for_mq_token(self, token: str) -> Session:
        session = self.sessions.get(self.auth.mq_token_session(token))
        if (
            session is None
            or session.mq_token != token
            or self.live_session(session.scale_set) is not session
        ):
            raise PlainError(401, "The message queue token is not valid for an active session.")
        return session

    @contextmanager
    def polling(self, session: Session) -> Iterator[None]:
        """Mark the owner as present for the duration of a long poll."""
        session.polls_in_flight += 1
        session.last_seen = self.clock.now()
        try:
            yield
        finally:
            session.polls_in_flight -= 1
            session.last_seen = self.clock.now()

    def new_message_id(self, last_id: int) -> int:
        self._next_message_id = max(self._next_message_id, last_id + 1)
        message_id = self._next_message_id
        self._next_message_id += 1
        return message_id

    # -- runners -----------------------------------------------------------------------------

    def generate_jit(
        self, tenant: Tenant, scale_set_id: int, name: Any, base_url: str
    ) -> tuple[Runner, JitConfig]:
        ss = self.scale_set(tenant, scale_set_id)
        if not isinstance(name, str) or not name.strip():
            raise _invalid("the JIT config request needs a non-empty 'name'")
        if name in self.names_issued:
            self.duplicate_names += 1  # a listener must never reuse a runner name
        if self.find_runners(tenant, name):
            raise VssError(
                409, errors.AGENT_EXISTS, f"A runner named '{name}' already exists in the pool."
            )
        runner = Runner(
            id=next(self._runner_ids),
            name=name,
            scale_set=ss,
            secret=self._ledger.add(self._rng.getrandbits(256).to_bytes(32).hex()),
        )
        self.runners[runner.id] = runner
        ss.runners[runner.id] = runner
        self.names_issued.add(name)
        jit = JitConfig(base_url, runner.id, runner.name, ss.id, runner.secret)
        return runner, jit

    def runner(self, tenant: Tenant, runner_id: int) -> Runner:
        runner = self.runners.get(runner_id)
        if runner is None or runner.scale_set.tenant is not tenant:
            raise VssError(
                404, errors.AGENT_NOT_FOUND, f"The runner with id {runner_id} was not found."
            )
        return runner

    def find_runners(self, tenant: Tenant, name: str | None) -> list[Runner]:
        return [
            r
            for r in self.runners.values()
            if r.scale_set.tenant is tenant and (name is None or r.name.lower() == name.lower())
        ]

    def delete_runner(self, tenant: Tenant, runner_id: int) -> None:
        runner = self.runner(tenant, runner_id)
        if runner.job is not None:
            raise VssError(
                400,
                errors.JOB_STILL_RUNNING,
                f"The runner {runner.name} is running job {runner.job.request_id} and cannot "
                "be removed until it finishes.",
            )
        self._remove_runner(runner)

    def _remove_runner(self, runner: Runner) -> None:
        runner.removed = True
        self.runners.pop(runner.id, None)
        runner.scale_set.runners.pop(runner.id, None)
        runner.scale_set.signal.notify()

    def authenticate_runner(self, runner_id: int, secret: str) -> Runner:
        """The runner emulator's credential check (404 once the runner is deregistered)."""
        runner = self.runners.get(runner_id)
        if runner is None:
            raise PlainError(404, f"runner {runner_id} is not registered (removed)")
        if runner.secret != secret:
            raise PlainError(401, "bad runner credential")
        return runner

    def runner_online(self, runner: Runner) -> None:
        if runner.online:
            raise PlainError(
                409, f"runner {runner.name} is already configured (JIT configs are single-use)"
            )
        runner.online = True

    def finish_job(self, runner: Runner, job_id: int) -> None:
        job = runner.job
        if job is None or job.request_id != job_id:
            raise PlainError(409, f"runner {runner.name} is not running job {job_id}")
        self.jobs.complete(runner, job)
        self._remove_runner(runner)  # ephemeral: deregistered after one job

    # -- observation -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        counts = self.jobs.counts
        return {
            "jobs": {
                # offered (JobAvailable) but not acquired still counts as queued
                "queued": counts[JobState.QUEUED] + counts[JobState.AVAILABLE],
                "assigned": counts[JobState.ASSIGNED],
                "running": counts[JobState.RUNNING],
                "completed": counts[JobState.COMPLETED],
                "canceled": counts[JobState.CANCELED],
                "reassigned": self.jobs.reassigned_total,
            },
            "runners": {
                "registered": len(self.runners),
                "online": sum(1 for r in self.runners.values() if r.online),
                "busy": sum(1 for r in self.runners.values() if r.job is not None),
                "duplicate_names": self.duplicate_names,
                # registered runners per scale set (name): "never over max" per scale set
                "by_scale_set": dict(Counter(r.scale_set.name for r in self.runners.values())),
            },
        }


def _invalid(message: str) -> VssError:
    return VssError(400, errors.INVALID_REQUEST, message)
