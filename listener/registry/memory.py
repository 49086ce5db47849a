"""In-process registry: fast and exact, but forgotten on restart (reconciliation then adopts
the runners still alive). Use the DynamoDB registry where restarts must not lose track."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from gha_scalesets.listener.registry.base import (
    RunnerRecord,
    RunnerState,
    UnknownRunnerError,
    check_changes,
)


class MemoryRegistry:
    """The :class:`~listener.registry.base.Registry` in a dict, guarded by one lock."""

    def __init__(self, clock: Callable[[], float] = time.time, first_sequence: int = 1) -> None:
        self._clock = clock
        self._runners: dict[int, dict[str, RunnerRecord]] = {}
        self._first_sequence = first_sequence
        self._sequences: dict[int, int] = {}
        self._profiles: dict[int, dict[str, Any]] = {}
        self._lock = asyncio.Lock()

    def _set(self, scale_set_id: int) -> dict[str, RunnerRecord]:
        return self._runners.setdefault(scale_set_id, {})

    async def reserve(self, scale_set_id: int, names: list[str], max_runners: int) -> list[str]:
        async with self._lock:
            runners = self._set(scale_set_id)
            room = max(0, max_runners - len(runners))
            now = self._clock()
            granted = [n for n in dict.fromkeys(names) if n not in runners][:room]
            for name in granted:
                runners[name] = RunnerRecord(
                    scale_set_id, name, RunnerState.RESERVED, created_at=now, updated_at=now
                )
            return granted

    async def update(self, scale_set_id: int, runner_name: str, **changes: Any) -> None:
        check_changes(changes)
        async with self._lock:
            runners = self._set(scale_set_id)
            record = runners.get(runner_name)
            if record is None:
                raise UnknownRunnerError(runner_name)
            runners[runner_name] = dataclasses.replace(record, updated_at=self._clock(), **changes)

    async def release(self, scale_set_id: int, runner_name: str) -> bool:
        async with self._lock:
            return self._set(scale_set_id).pop(runner_name, None) is not None

    async def get(self, scale_set_id: int, runner_name: str) -> RunnerRecord | None:
        return self._set(scale_set_id).get(runner_name)

    async def find_by_provider_id(self, provider_id: str) -> RunnerRecord | None:
        for runners in self._runners.values():
            for record in runners.values():
                if record.provider_id == provider_id:
                    return record
        return None

    async def list(self, scale_set_id: int) -> list[RunnerRecord]:
        return list(self._set(scale_set_id).values())

    async def count(self, scale_set_id: int) -> int:
        return len(self._set(scale_set_id))

    async def repair_count(self, scale_set_id: int) -> int:
        return 0  # the count is the number of items by construction

    async def next_sequence(self, scale_set_id: int, n: int) -> int:
        async with self._lock:
            first = self._sequences.get(scale_set_id, self._first_sequence - 1) + 1
            self._sequences[scale_set_id] = first + n - 1
            return first

    async def load_profile(self, scale_set_id: int) -> dict[str, Any] | None:
        return copy.deepcopy(self._profiles.get(scale_set_id))

    async def save_profile(self, scale_set_id: int, profile: dict[str, Any]) -> None:
        self._profiles[scale_set_id] = copy.deepcopy(profile)

    async def close(self) -> None:
        return None
