"""What a test or a benchmark observes of a listener: its logs, metrics, and the fleet GitHub
sees."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry

from gha_scalesets.listener.logs import configure_logging
from gha_scalesets.simulator.testing import SimulatorServer


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


def metric_total(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include ``labels``."""
    return sum(
        value
        for sample, value in metric_samples(registry, name)
        if labels.items() <= sample.items()
    )


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
