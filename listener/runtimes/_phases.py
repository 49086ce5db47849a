"""Ordering guard for pushed state events: queues and watches deliver at least once, unordered."""

from __future__ import annotations

from cachetools import LRUCache

from gha_scalesets.listener.runtimes.base import RunnerPhase

_RANK = {
    RunnerPhase.PENDING: 0,
    RunnerPhase.RUNNING: 1,
    RunnerPhase.STOPPED: 2,
    RunnerPhase.FAILED: 2,
}


class PhaseTracker:
    """Remembers the last phase per provider id and refuses repeats and regressions.

    A runner only moves forward (pending, running, ended); the first end seen wins, so a late
    "running" after "terminated", or a second "terminated", is not passed on.
    """

    def __init__(self, maxsize: int = 100_000) -> None:
        self._last: LRUCache[str, RunnerPhase] = LRUCache(maxsize)

    def advance(self, provider_id: str, phase: RunnerPhase) -> bool:
        """Record ``phase``; False when it is not news (same or earlier than what was seen)."""
        last = self._last.get(provider_id)
        if last is not None and _RANK[phase] <= _RANK[last]:
            return False
        self._last[provider_id] = phase
        return True
