"""Replicas rebalancing mid-burst: a replica joins, then another leaves, while jobs run.

Three ``python -m gha_scalesets.listener run`` replicas of four scale sets, sharing the DynamoDB
registry (and its leases and member records) on moto and the local runtime's state directory.
Two start and split the scale sets; a burst is queued on every scale set; at a random point a
third replica joins (the others hand scale sets over to it: release, the new active deletes the
old session and opens its own); once the split is even again one of the first two gets SIGTERM
(its scale sets are taken over). Every job must complete, no scale set may have more runners
than its max, no runner name may be issued twice, nothing may be left behind.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path

from benchmarks.chaos_checks import ScenarioResult
from benchmarks.chaos_ha import _scrape
from benchmarks.chaos_process import ListenerProcess, _process_settings, _world
from benchmarks.chaos_scenarios import TABLE, Size, _create_scale_set
from gha_scalesets.listener.registry.dynamodb import DynamoDBRegistry
from tests.support import aws
from tests.support.canaries import Canaries, files_text
from tests.support.observe import FleetPeak
from tests.support.waits import eventually

KIND = "ha-rebalance"
SETS = 4


async def _leading(replicas: list[ListenerProcess]) -> list[int]:
    return [int(await _scrape(r, "gha_listener_leader")) for r in replicas]


async def _even(replicas: list[ListenerProcess], within: float) -> float | None:
    """Seconds until every scale set is led and the replicas split them within one."""
    started = time.monotonic()

    async def even() -> bool:
        counts = await _leading(replicas)
        return sum(counts) == SETS and max(counts) - min(counts) <= 1

    if await eventually(even, within, interval=0.1):
        return round(time.monotonic() - started, 2)
    return None


async def _settle(
    sim: object, moto_url: str, ids: list[int], workdir: Path, size: Size
) -> tuple[dict[str, int], bool]:
    """Wait for the fleet to go idle; what is left (GitHub, processes, registry) if anything."""
    registry = DynamoDBRegistry(TABLE, aws.client("dynamodb", moto_url))

    async def leftovers() -> dict[str, int]:
        counts = [await registry.count(i) for i in ids]
        return {
            "github_runners": sim.stats()["runners"]["registered"],  # type: ignore[attr-defined]
            "runner_processes": len(list((workdir / "runners").glob("*.json"))),
            "registry_runners": sum(counts),
        }

    async def idle() -> bool:
        return not any((await leftovers()).values())

    await eventually(idle, size.idle_seconds, interval=0.25)
    left = {k: v for k, v in (await leftovers()).items() if v}
    listed = [len(await registry.list(i)) for i in ids]
    return left, sum(listed) == 0


async def run_rebalance(
    size: Size, moto_url: str, workdir: Path, run_index: int = 0
) -> ScenarioResult:
    """One replica joins and one leaves during a burst over four scale sets."""
    rng = random.Random(f"{KIND}:{run_index}")
    result = ScenarioResult(KIND, KIND, size.jobs, faults_injected=2)  # a join, a departure
    result.max_runners = size.max_runners
    names = [f"chaos-rebalance-{i}" for i in range(SETS)]
    with _world(run_index, moto_url) as sim:
        ids = [(await _create_scale_set(sim, name)).id for name in names]
        replicas: list[ListenerProcess] = []

        def start(label: str) -> ListenerProcess:
            settings = _process_settings(sim, names[0], size, workdir, keep_runners_on_exit=True)
            settings["scale_sets"] = [
                {"scale_set_id": i, "max_runners": size.max_runners} for i in ids
            ]
            settings["owner_name"] = f"replica-{label}"
            settings["leadership"] = {
                "lease_duration_seconds": size.lease_seconds,
                "renew_interval_seconds": size.renew_seconds,
            }
            replica = ListenerProcess(workdir, settings, f"rebalance-{label}").start(moto_url)
            replicas.append(replica)
            return replica

        try:
            a, b = start("a"), start("b")
            if await _even([a, b], size.deadline_seconds) is None:
                result.notes.append("the first two replicas never split the scale sets")
            async with FleetPeak(sim) as peak:
                started = time.monotonic()
                for i, name in enumerate(names):
                    share = size.jobs // SETS + (1 if i < size.jobs % SETS else 0)
                    sim.queue_jobs([name], share, duration_seconds=size.job_seconds * 3)
                await asyncio.sleep(rng.uniform(0.2, size.hold_seconds))  # the random point
                c = start("c")
                joined = await _even([a, b, c], size.deadline_seconds)
                if joined is None:
                    result.notes.append("the joining replica never got its share")
                else:
                    result.extra["join_rebalance_seconds"] = joined
                b.signal(signal.SIGTERM)
                if await b.wait() != 0:
                    result.notes.append("the leaving replica did not exit 0 on SIGTERM")
                left = await _even([a, c], size.deadline_seconds)
                if left is None:
                    result.notes.append("the leaving replica's scale sets were not taken over")
                else:
                    result.extra["leave_rebalance_seconds"] = left
                await result.time_recovery(sim, started, size.jobs, size.deadline_seconds)
            result.peak_runners = max(peak.peak_by_scale_set.values(), default=0)
            result.extra["handovers"] = sum(
                [await _scrape(r, "gha_listener_lease_handovers_total") for r in (a, c)]
            )
            if not result.extra["handovers"]:
                result.notes.append("nothing was handed over to the joining replica")
            result.record_simulator(sim)
            result.orphans, result.registry_consistent = await _settle(
                sim, moto_url, ids, workdir, size
            )
            result.recovered = all([await r.ready(1.0) for r in (a, c)])
        finally:
            for replica in replicas:
                assert replica.process is not None
                if replica.process.poll() is None:
                    replica.signal(signal.SIGTERM)
                    if await replica.wait() != 0:
                        result.notes.append(f"{replica.label} did not exit cleanly on SIGTERM")
    result.leaks = Canaries().leaks(files_text(workdir))
    return result
