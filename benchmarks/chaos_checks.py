"""What every chaos scenario measures: fleet peaks, leftovers, leaked secrets, and the result row.

Canary secrets are recognisable fake values (a PAT, a private key) plus every JIT config the
simulator issued during the run; any of them found in logs, metrics, exception text or files
counts as a leak.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from gha_scalesets.listener.logs import configure_logging
from gha_scalesets.simulator.testing import SimulatorServer

CANARY_PAT = "ghp_CANARYchaos0000000000000000000000000"
CANARY_PAT_2 = "ghp_CANARYchaos0000000000000000000000002"  # a listener's second credential
# JIT configs are long base64 blobs; a 24-character slice of one is enough to recognise it.
_CANARY_SLICE = 24


@dataclass
class Canaries:
    """The secrets of one run and where they must never show up."""

    secrets: dict[str, str] = field(
        default_factory=lambda: {"pat": CANARY_PAT, "pat-2": CANARY_PAT_2}
    )

    def add_jit_configs(self, configs: Iterable[str]) -> None:
        for index, config in enumerate(configs):
            self.secrets[f"jit-config-{index}"] = config

    def _needles(self) -> Iterator[tuple[str, str]]:
        for name, secret in self.secrets.items():
            yield name, secret
            if len(secret) > 2 * _CANARY_SLICE:  # a truncated or sliced copy still leaks
                middle = len(secret) // 2
                yield name, secret[middle : middle + _CANARY_SLICE]

    def leaks(self, sources: dict[str, str]) -> list[str]:
        """``"<secret> in <source>"`` for every canary found (deduplicated per pair)."""
        found = {
            f"{name} in {where}"
            for where, text in sources.items()
            for name, needle in self._needles()
            if needle in text
        }
        return sorted(found)


def files_text(root: Path) -> dict[str, str]:
    """Every file under ``root`` as text, keyed by its relative path."""
    return {
        f"file:{path.relative_to(root)}": path.read_bytes().decode(errors="replace")
        for path in root.rglob("*")
        if path.is_file()
    }


@contextlib.contextmanager
def captured_logs(level: str = "debug") -> Iterator[io.StringIO]:
    """The listener's production log pipeline (JSON + redaction) into a buffer; restores
    the root logger afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buffer = io.StringIO()
    configure_logging(level, stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


def metric_samples(registry: CollectorRegistry, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in registry.collect()
        for sample in family.samples
        if sample.name == name
    ]


def exposition_sum(exposition: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` carrying ``labels``, from Prometheus text format."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith(name + "{") and all(w in line for w in wanted)
    )


def api_statuses(registry: CollectorRegistry) -> dict[str, float]:
    """GitHub requests by HTTP status as the listener counted them (``error``: no answer)."""
    totals: dict[str, float] = {}
    for labels, value in metric_samples(registry, "gha_listener_api_requests_total"):
        totals[labels["status"]] = totals.get(labels["status"], 0) + value
    return totals


class FleetPeak:
    """Samples the runners GitHub sees (registered on the simulator) until stopped: the peak
    of the whole fleet and of each scale set (by name)."""

    def __init__(self, sim: SimulatorServer, interval: float = 0.05) -> None:
        self._sim = sim
        self._interval = interval
        self.peak = 0
        self.peak_by_scale_set: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            runners = (await asyncio.to_thread(self._sim.stats))["runners"]
            self.peak = max(self.peak, runners["registered"])
            for name, count in runners["by_scale_set"].items():
                self.peak_by_scale_set[name] = max(self.peak_by_scale_set.get(name, 0), count)
            await asyncio.sleep(self._interval)

    async def __aenter__(self) -> FleetPeak:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def wait_until(check: Any, within: float, interval: float = 0.1) -> bool:
    """Poll ``check`` (sync or async, truthy when done) until it holds or ``within`` passes."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)


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
