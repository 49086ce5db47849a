"""The runner registry: what the listener knows about its runners without asking the cloud.

Runner items are keyed by (scale set id, runner name). A per-scale-set count moves only through
``reserve`` (conditional: never above max, even across restarts and concurrent writers) and
``release`` (once per reserved runner, never below zero).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable


class RunnerState(enum.StrEnum):
    RESERVED = "reserved"  # counted, JIT config being generated / launch in flight
    LAUNCHED = "launched"  # runtime accepted it (provider_id known)
    IDLE = "idle"  # online, no job yet
    BUSY = "busy"  # running a job
    DONE = "done"  # finished; removal pending


class UnknownRunnerError(KeyError):
    """``update`` was asked to change a runner the registry does not hold (already released)."""


@dataclass(frozen=True)
class RunnerRecord:
    scale_set_id: int
    runner_name: str
    state: RunnerState
    runner_id: int | None = None
    provider_id: str | None = None
    job_id: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    expires_at: float | None = None  # TTL (epoch seconds) for the item in durable stores


UPDATABLE_FIELDS = frozenset({"state", "runner_id", "provider_id", "job_id"})


def check_changes(changes: dict[str, object]) -> None:
    """Validate (and normalise ``state`` of) the fields given to ``Registry.update``."""
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"registry.update cannot change {', '.join(sorted(unknown))}")
    if "state" in changes:
        changes["state"] = RunnerState(cast(str, changes["state"]))


@runtime_checkable
class Registry(Protocol):
    async def reserve(self, scale_set_id: int, names: list[str], max_runners: int) -> list[str]:
        """Count and record new runners up to ``max_runners``; returns the names granted."""
        ...

    async def update(self, scale_set_id: int, runner_name: str, **changes: object) -> None:
        """Change fields of an existing runner item (state, runner_id, provider_id, job_id).

        Raises :class:`UnknownRunnerError` when the runner is not (or no longer) registered.
        """
        ...

    async def release(self, scale_set_id: int, runner_name: str) -> bool:
        """Remove a runner and uncount it; False when it was already gone (idempotent)."""
        ...

    async def get(self, scale_set_id: int, runner_name: str) -> RunnerRecord | None: ...

    async def find_by_provider_id(self, provider_id: str) -> RunnerRecord | None: ...

    async def list(self, scale_set_id: int) -> list[RunnerRecord]: ...

    async def count(self, scale_set_id: int) -> int:
        """The number of counted runners (served from a short TTL cache where durable)."""
        ...

    async def repair_count(self, scale_set_id: int) -> int:
        """Make the count equal the number of runner items (reconciliation; items can vanish
        behind the count's back, e.g. by TTL); returns the correction applied (0 if none)."""
        ...

    async def next_sequence(self, scale_set_id: int, n: int) -> int:
        """Atomically allocate ``n`` runner-name sequence numbers; returns the first.

        Names built from these are never reused, even after a crash and restart.
        """
        ...

    async def load_profile(self, scale_set_id: int) -> dict[str, Any] | None:
        """The stored demand profile of the scale set's adaptive warm capacity, if any."""
        ...

    async def save_profile(self, scale_set_id: int, profile: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...
