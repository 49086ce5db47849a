"""What every chaos scenario measures: the result row and the GitHub statuses the listener saw.

Canary secrets (:mod:`tests.support.canaries`) are recognisable fake values (a PAT, a private
key) plus every JIT config the simulator issued during the run; any of them found in logs,
metrics, exception text or files counts as a leak.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from prometheus_client import CollectorRegistry

from gha_scalesets.simulator.testing import SimulatorServer
from tests.support.observe import metric_samples
from tests.support.waits import eventually


def api_statuses(registry: CollectorRegistry) -> dict[str, float]:
    """GitHub requests by HTTP status as the listener counted them (``error``: no answer)."""
    totals: dict[str, float] = {}
    for labels, value in metric_samples(registry, "gha_listener_api_requests_total"):
        totals[labels["status"]] = totals.get(labels["status"], 0) + value
    return totals


@dataclass
class ScenarioResult:
    """One scenario's figures; ``ok`` when every invariant held."""

    name: str
    kind: str
    jobs: int
    completed: int = 0
    faults_injected: int = 0
    max_runners: int = 0
    peak_runners: int = 0
    duplicate_names: int = 0  # JIT configs requested for a runner name issued before
    orphans: dict[str, int] = field(default_factory=dict)
    registry_consistent: bool = False
    recovered: bool = False
    recovery_seconds: float | None = None
    leaks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # problems beyond the standard invariants
    extra: dict[str, float] = field(default_factory=dict)  # scenario-specific figures

    @property
    def lost(self) -> int:
        return self.jobs - self.completed

    @property
    def over_max(self) -> int:
        return max(0, self.peak_runners - self.max_runners)

    @property
    def orphan_total(self) -> int:
        return sum(self.orphans.values())

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.over_max == 0
            and self.duplicate_names == 0
            and self.orphan_total == 0
            and self.registry_consistent
            and self.recovered
            and not self.leaks
            and not self.notes
        )

    def problems(self) -> list[str]:
        """Human-readable invariant violations (empty when ``ok``)."""
        checks = [
            (self.lost, f"{self.lost} of {self.jobs} jobs lost"),
            (self.over_max, f"{self.peak_runners} runners above max {self.max_runners}"),
            (self.duplicate_names, f"{self.duplicate_names} runner names issued twice"),
            (self.orphan_total, f"orphans left after idle: {self.orphans}"),
            (not self.registry_consistent, "registry inconsistent after idle"),
            (not self.recovered, "listener did not recover on its own"),
            (self.leaks, f"secrets leaked: {self.leaks}"),
        ]
        return [message for failed, message in checks if failed] + self.notes

    async def time_recovery(
        self, sim: SimulatorServer, since: float, jobs: int, deadline: float
    ) -> None:
        """Once all ``jobs`` are done on ``sim`` (within ``deadline`` seconds), the seconds it
        took from ``since`` (a monotonic time) are the recovery time."""
        if await eventually(lambda: sim.stats()["jobs"]["completed"] >= jobs, deadline):
            self.recovery_seconds = round(time.monotonic() - since, 2)

    def record_simulator(self, sim: SimulatorServer) -> None:
        """The burst's outcome as GitHub (the simulator) saw it."""
        stats = sim.stats()
        self.completed = stats["jobs"]["completed"]
        self.duplicate_names = stats["runners"]["duplicate_names"]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(lost=self.lost, over_max=self.over_max, ok=self.ok)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScenarioResult:
        """A row written by :meth:`to_json` (derived figures are recomputed)."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
