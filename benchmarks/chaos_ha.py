"""High-availability faults: two listener replicas, the active one fails mid-burst.

Both replicas are ``python -m gha_scalesets.listener run`` on one scale set, sharing the DynamoDB
registry (and its lease item) on moto and the local runtime's state directory (runners outlive the
process that launched them, as instances, tasks and pods do). Faults on the active replica:

- ``ha-kill-9``: SIGKILL at a random point of the burst; a supervisor restarts it as a standby.
- ``ha-sigterm``: a rolling replacement: a new replica starts, then the active gets SIGTERM.
- ``ha-partition``: the active loses the registry (every DynamoDB call fails) for longer than
  the lease, then gets it back; it must step down and stay a standby.

The burst's second half is queued at the fault, so the new active has messages to serve.
Takeover = from the fault to the first message served by a former standby.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks import chaos_aws
from benchmarks.chaos_checks import ScenarioResult
from benchmarks.chaos_process import ListenerProcess, _process_settings, _settle, _world
from benchmarks.chaos_scenarios import Size, _create_scale_set
from gha_scalesets.simulator.testing import SimulatorServer
from tests.support.canaries import Canaries, files_text
from tests.support.observe import FleetPeak, exposition_sum
from tests.support.waits import eventually

SESSION_TTL_SECONDS = 120.0  # the simulator's default, GitHub's order of magnitude
_DYNAMODB_OPERATIONS = (
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "TransactWriteItems",
    "Query",
)


async def _scrape(replica: ListenerProcess, name: str, **labels: str) -> float:
    try:
        return exposition_sum(await replica.metrics(), name, **labels)
    except Exception:  # not serving metrics (yet, or any more)
        return 0.0


async def _leads(replica: ListenerProcess) -> bool:
    return await _scrape(replica, "gha_listener_leader") >= 1


async def _served(replica: ListenerProcess) -> bool:
    return await _scrape(replica, "gha_listener_messages_total") > 0


class _Replicas:
    """The replicas of one run: started with their own owner name and metrics port."""

    def __init__(
        self, sim: SimulatorServer, name: str, size: Size, workdir: Path, moto_url: str
    ) -> None:
        self._sim, self._name, self._size = sim, name, size
        self._workdir, self._moto_url = workdir, moto_url
        self.all: list[ListenerProcess] = []

    def start(self, label: str, aws_endpoint: str | None = None) -> ListenerProcess:
        settings = _process_settings(
            self._sim, self._name, self._size, self._workdir, keep_runners_on_exit=True
        )
        settings["owner_name"] = f"replica-{label}"
        settings["leadership"] = {
            "lease_duration_seconds": self._size.lease_seconds,
            "renew_interval_seconds": self._size.renew_seconds,
        }
        if aws_endpoint is not None:  # this replica's own way to DynamoDB (a proxy)
            settings["aws"] = {**settings["aws"], "endpoint_url": aws_endpoint}
        replica = ListenerProcess(self._workdir, settings, f"{self._name}-{label}")
        self.all.append(replica.start(self._moto_url))
        return replica

    async def stop(self) -> list[str]:
        """SIGTERM every live replica; notes for those that did not exit 0."""
        notes = []
        for replica in self.all:
            assert replica.process is not None
            if replica.process.poll() is None:
                replica.signal(signal.SIGTERM)
                if await replica.wait() != 0:
                    notes.append(f"{replica.label} did not exit cleanly on SIGTERM")
        return notes


async def run_ha(
    kind: str, size: Size, moto_url: str, workdir: Path, run_index: int = 0
) -> ScenarioResult:
    """One HA run of ``kind`` (``ha-kill-9``, ``ha-sigterm`` or ``ha-partition``)."""
    rng = random.Random(f"{kind}:{run_index}")
    label = f"{kind}-run-{run_index}" if kind == "ha-kill-9" else kind
    result = ScenarioResult(label, kind, size.jobs, faults_injected=1)
    result.max_runners = size.max_runners
    name = f"chaos-{kind}-{run_index}"
    first_half = size.jobs // 2
    # Sessions of dead listeners linger as long as on GitHub: the successor must delete them.
    with (
        _world(run_index, moto_url, session_ttl_seconds=SESSION_TTL_SECONDS) as sim,
        _partition_proxy(moto_url) as proxy,
    ):
        scale_set = await _create_scale_set(sim, name)
        replicas = _Replicas(sim, name, size, workdir, moto_url)
        try:
            active = replicas.start("a", proxy.url if kind == "ha-partition" else None)
            if not await eventually(lambda: _leads(active), size.deadline_seconds):
                result.notes.append("the first replica never led")
            standby = replicas.start("b")
            if not await standby.ready(size.deadline_seconds):
                result.notes.append("the standby never became ready")
            if kind == "ha-sigterm":
                surge = replicas.start("c")  # RollingUpdate: the new pod first, then the old
                if not await surge.ready(size.deadline_seconds):
                    result.notes.append("the surge replica never became ready")
            async with FleetPeak(sim) as peak:
                sim.queue_jobs([name], first_half, duration_seconds=size.job_seconds * 3)
                await asyncio.sleep(rng.uniform(0.2, size.hold_seconds))  # the random point
                faulted = time.monotonic()
                if kind == "ha-kill-9":
                    active.signal(signal.SIGKILL)
                    await active.wait()
                    replicas.start("a2")  # the supervisor: a fresh standby
                elif kind == "ha-sigterm":
                    active.signal(signal.SIGTERM)
                    if await active.wait() != 0:
                        result.notes.append("the active replica did not exit 0 on SIGTERM")
                else:
                    proxy.faults = [
                        chaos_aws.AwsFault(op, "ServiceUnavailable", 503)
                        for op in _DYNAMODB_OPERATIONS
                    ]
                sim.queue_jobs(
                    [name], size.jobs - first_half, duration_seconds=size.job_seconds * 3
                )
                successors = [r for r in replicas.all if r is not active]
                successor = await _first_served(successors, size.deadline_seconds)
                if successor is None:
                    result.notes.append("no standby took over")
                else:
                    result.extra["takeover_seconds"] = round(time.monotonic() - faulted, 2)
                    await _check_successor(successor, kind, result)
                if kind == "ha-partition":
                    await _heal(proxy, faulted + size.lease_seconds * 1.5)
                    result.extra["faults_answered"] = sum(proxy.injected.values())
                await result.time_recovery(sim, faulted, size.jobs, size.deadline_seconds)
            if kind == "ha-partition":
                await _check_deposed(active, result)
            result.peak_runners = peak.peak
            result.record_simulator(sim)
            result.orphans, result.registry_consistent = await _settle(
                sim, moto_url, scale_set.id, workdir, size
            )
            result.recovered = await _one_leader_rest_standby(replicas, active, kind)
        finally:
            result.notes.extend(await replicas.stop())
    result.leaks = Canaries().leaks(files_text(workdir))
    return result


async def _first_served(replicas: list[ListenerProcess], within: float) -> ListenerProcess | None:
    """The first of ``replicas`` to serve a message (polled), ``None`` if none did."""
    served: list[ListenerProcess] = []

    async def any_served() -> bool:
        served.extend([r for r in replicas if await _served(r)])
        return bool(served)

    return served[0] if await eventually(any_served, within, interval=0.05) else None


async def _check_successor(successor: ListenerProcess, kind: str, result: ScenarioResult) -> None:
    """The new active never waited out a 409; after a crash it deleted the dead session."""
    events = "gha_listener_session_events_total"
    if await _scrape(successor, events, event="conflict"):
        result.notes.append("the new active waited out a session conflict")
    if kind == "ha-kill-9" and not await _scrape(successor, events, event="taken_over"):
        result.notes.append("the new active did not delete the dead holder's session")


async def _heal(proxy: chaos_aws.AwsFaultProxy, at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    proxy.faults = []


async def _check_deposed(replica: ListenerProcess, result: ScenarioResult) -> None:
    """The partitioned replica stepped down, never reopened a session, and stands by."""
    losses = await _scrape(replica, "gha_listener_lease_losses_total")
    sessions = await _scrape(replica, "gha_listener_session_events_total", event="created")
    if losses < 1:
        result.notes.append("the partitioned active never stepped down")
    if sessions != 1:
        result.notes.append(f"the partitioned active opened {sessions:.0f} sessions, not 1")
    if await _leads(replica):
        result.notes.append("the partitioned active leads again while the other holds the lease")


async def _one_leader_rest_standby(replicas: _Replicas, failed: ListenerProcess, kind: str) -> bool:
    """Exactly one live replica leads and every live one is ready (serving or standing by)."""
    live = [r for r in replicas.all if r.process is not None and r.process.poll() is None]
    leaders = [r for r in live if await _leads(r)]
    ready = [await r.ready(1.0) for r in live]
    gone = failed not in live
    return len(leaders) == 1 and all(ready) and (gone or kind == "ha-partition")


@contextlib.contextmanager
def _partition_proxy(moto_url: str) -> Iterator[chaos_aws.AwsFaultProxy]:
    """The active replica's way to DynamoDB in ``ha-partition`` (idle otherwise)."""
    with chaos_aws.AwsFaultProxy(moto_url, []).running() as proxy:
        yield proxy


HA_KINDS = ("ha-kill-9", "ha-sigterm", "ha-partition")


def runs(kind: str, size: Size) -> int:
    """How many runs of ``kind``: random kill points deserve several."""
    return size.ha_kill_runs if kind == "ha-kill-9" else 1
