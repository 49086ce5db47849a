"""The simulator's domain objects: tenants, runner groups, scale sets, sessions, runners, jobs.

A *tenant* is what runner-registration hands out for one config-URL scope (an org, a repo
or an enterprise): its own admin base URL, its own scale sets and runner names. Objects are
plain mutable dataclasses owned by :class:`simulator.world.World`; only the event loop
touches them, so no locking is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

from gha_scalesets.simulator.aio import Signal
from gha_scalesets.simulator.mqueue import MessageQueue

ScopeKind = Literal["org", "repo", "enterprise"]


@dataclass(frozen=True)
class Scope:
    """An org (``acme``), a repository (``acme/app``) or an enterprise (``e``), lower-cased."""

    kind: ScopeKind
    name: str

    @classmethod
    def from_config_url(cls, url: str) -> Scope:
        """Parse a config URL the way the clients do (reference section 2.1)."""
        path = urlsplit(url.strip("/")).path.strip("/")
        parts = path.split("/") if path else []
        if len(parts) == 1 and parts[0]:
            return cls("org", parts[0].lower())
        if len(parts) == 2 and all(parts):
            if parts[0].lower() == "enterprises":
                return cls("enterprise", parts[1].lower())
            return cls("repo", f"{parts[0]}/{parts[1]}".lower())
        raise ValueError(
            f"invalid config URL {url!r}, should point to an enterprise, org, or repository"
        )

    def covers(self, repository: str) -> bool:
        """Whether runners registered at this scope may run jobs of ``owner/repo``.

        Every org is treated as part of every enterprise.
        """
        repository = repository.lower()
        if self.kind == "enterprise":
            return True
        if self.kind == "org":
            return repository.split("/", 1)[0] == self.name
        return repository == self.name

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(eq=False)
class Tenant:
    id: str
    scope: Scope


@dataclass(frozen=True)
class RunnerGroup:
    id: int
    name: str
    is_default: bool


class JobState(StrEnum):
    QUEUED = "queued"
    AVAILABLE = "available"  # offered with JobAvailable, waiting for acquirejobs (GHES mode)
    ASSIGNED = "assigned"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELED = "canceled"  # final: gave up after the last reassignment


@dataclass(frozen=True)
class Statistics:
    """Scale-set statistics (reference section 4.8), computed on demand."""

    available: int
    acquired: int
    assigned: int
    running: int
    registered: int
    busy: int

    @property
    def idle(self) -> int:
        return self.registered - self.busy


@dataclass(eq=False)
class ScaleSet:
    id: int
    tenant: Tenant
    name: str
    group: RunnerGroup
    labels: list[dict[str, str]]
    settings: dict[str, bool]
    created_on: float
    queue: MessageQueue = field(default_factory=MessageQueue)
    signal: Signal = field(default_factory=Signal)
    session: Session | None = None
    jobs: dict[int, Job] = field(default_factory=dict)  # available, assigned or running here
    runners: dict[int, Runner] = field(default_factory=dict)
    deleted: bool = False

    def label_names(self) -> set[str]:
        """What ``runs-on`` may name: the labels, and always the scale set's own name."""
        return {label["name"].lower() for label in self.labels} | {self.name.lower()}

    def accepts(self, job: Job) -> bool:
        return set(job.labels) <= self.label_names() and self.tenant.scope.covers(job.repository)

    def statistics(self) -> Statistics:
        states = [job.state for job in self.jobs.values()]
        running = states.count(JobState.RUNNING)
        return Statistics(
            available=states.count(JobState.AVAILABLE),
            acquired=sum(
                1 for j in self.jobs.values() if j.acquired and j.state is JobState.ASSIGNED
            ),
            assigned=states.count(JobState.ASSIGNED) + running,
            running=running,
            registered=len(self.runners),
            busy=sum(1 for r in self.runners.values() if r.job is not None),
        )


@dataclass(eq=False)
class Session:
    id: str
    owner: str
    scale_set: ScaleSet
    mq_token: str = field(repr=False)
    last_seen: float
    polls_in_flight: int = 0
    max_capacity: int | None = None  # from the last X-ScaleSetMaxCapacity; None = not polled yet


@dataclass(eq=False)
class Runner:
    id: int
    name: str
    scale_set: ScaleSet
    secret: str = field(repr=False)
    online: bool = False
    job: Job | None = None
    removed: bool = False


@dataclass(eq=False)
class Job:
    request_id: int
    job_id: str
    labels: list[str]
    repository: str
    duration: float
    result: str
    workflow_run_id: int
    queue_time: float
    state: JobState = JobState.QUEUED
    scale_set: ScaleSet | None = None
    runner: Runner | None = None
    acquired: bool = False
    reassignments: int = 0
    epoch: int = 0  # bumped on every attach so stale timers can tell they are stale
    scale_set_assign_time: float | None = None
    runner_assign_time: float | None = None
    finish_time: float | None = None

    def summary(self) -> dict[str, Any]:
        """The job as the control API shows it (snake_case)."""
        return {
            "job_id": self.request_id,
            "state": self.state.value,
            "labels": self.labels,
            "repository": self.repository,
            "scale_set_id": self.scale_set.id if self.scale_set else None,
            "runner_name": self.runner.name if self.runner else None,
            "reassignments": self.reassignments,
            "result": self.result if self.state is JobState.COMPLETED else None,
        }
