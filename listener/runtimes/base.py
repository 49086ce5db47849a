"""The runtime interface: where ephemeral runners run (local processes, EC2, ECS, Kubernetes).

A runtime launches runners from JIT configs, tells the listener when they end through
``events()`` (process exit, EventBridge-fed SQS, a Kubernetes watch) and lists them only for the
periodic reconciliation. JIT configs are secrets: never log them, never store them in plain form.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

# A JIT secret or parameter younger than this may belong to a launch whose instance, task or pod
# the (eventually consistent) reconciliation listing does not show yet: never swept.
SWEEP_GRACE_SECONDS = 300.0


def sweep_cutoff(now: float) -> datetime:
    """JIT secrets and parameters last written before this (``now`` in epoch seconds) may be
    swept."""
    return datetime.fromtimestamp(now - SWEEP_GRACE_SECONDS, UTC)


class RunnerPhase(enum.StrEnum):
    """Where a runner is in its life, as the runtime sees it."""

    PENDING = "pending"  # launch accepted, not yet running
    RUNNING = "running"  # process/instance/task/pod is up
    STOPPED = "stopped"  # ended normally (job done, or never got one)
    FAILED = "failed"  # crashed, interrupted (spot), or could not start


@dataclass(frozen=True)
class RunnerSpec:
    """One runner to launch."""

    scale_set_id: int
    scale_set_name: str
    runner_name: str
    runner_id: int
    jit_config: str = field(repr=False)  # secret


@dataclass(frozen=True)
class LaunchResult:
    """The outcome of launching one runner: a provider id or an error (never both)."""

    runner_name: str
    provider_id: str | None = None
    error: str | None = None  # secret-free, for logs and metrics
    retryable: bool = False


@dataclass(frozen=True)
class RuntimeRunner:
    """A runner as the runtime lists it during reconciliation."""

    runner_name: str
    provider_id: str
    scale_set_id: int
    phase: RunnerPhase


@dataclass(frozen=True)
class RuntimeEvent:
    """A state change pushed by the runtime (never obtained by polling describe/list)."""

    provider_id: str
    phase: RunnerPhase
    runner_name: str | None = None
    scale_set_id: int | None = None
    reason: str | None = None


@runtime_checkable
class SpotMarket(Protocol):
    """A runtime that runs runners on spot capacity and may fall back to on-demand."""

    # Runners launched on-demand although spot is configured, by the spot refusal (error
    # code) that sent them there; exported as a metric (and alarmed on when it persists).
    spot_fallbacks: Counter[str]


@runtime_checkable
class Runtime(Protocol):
    """What the listener needs from a place that runs runners."""

    name: str
    # Cloud API calls by operation (e.g. "ec2:DescribeInstances"), exported as a metric; a
    # runtime without a cloud keeps an empty Counter.
    api_calls: Counter[str]

    async def launch(self, runners: Sequence[RunnerSpec]) -> list[LaunchResult]:
        """Start runners; one result per spec, in order; never raises for one runner."""
        ...

    async def terminate(self, provider_ids: Sequence[str]) -> None:
        """Stop runners and remove their JIT secrets; unknown ids are not an error."""
        ...

    async def list_runners(self, scale_set_id: int) -> list[RuntimeRunner]:
        """All runners of a scale set (reconciliation only: this may describe/list the cloud)."""
        ...

    def events(self) -> AsyncIterator[RuntimeEvent]:
        """State changes as they happen; the iterator ends when the runtime is closed."""
        ...

    async def close(self) -> None:
        """Release clients and background tasks."""
        ...
