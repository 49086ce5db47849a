"""The listener in-process against the simulator over HTTP: bursts, scaling, sessions, 401."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from gha_scalesets.listener.app import Listener
from gha_scalesets.listener.registry.memory import MemoryRegistry
from gha_scalesets.listener.session import SessionConflictTimeout
from gha_scalesets.scaleset import Client, PatCredentials
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT
from tests.support.github import ORG, create_scale_set, jobs_done
from tests.support.inprocess import InProcessRuntime
from tests.support.listener import listener_settings, running_listener
from tests.support.observe import FleetPeak, metric_total
from tests.support.waits import wait_for

JIT_ROUTE = "POST /_apis/runtime/runnerscalesets/{id}/generatejitconfig"


def requests(sim: SimulatorServer, method: str) -> int:
    return sum(n for route, n in sim.stats()["requests"].items() if route.startswith(method))


async def test_burst_of_100_jobs_stays_within_max(
    sim: SimulatorServer, state_dir: Path, record_property: Callable[[str, object], None]
) -> None:
    await create_scale_set(sim, "burst")
    runtime = InProcessRuntime()
    settings = listener_settings(sim, state_dir, "burst", max_runners=20)
    async with running_listener(settings, runtime=runtime) as listener:
        await wait_for(lambda: all(listener.ready().values()), 10, "the session")
        calls_before = sim.api_calls()
        async with FleetPeak(sim) as peak:
            sim.queue_jobs(["burst"], count=100, duration_seconds=0.3)
            await wait_for(jobs_done(sim, 100), 90, "100 completed jobs")
        metrics = listener.metrics.registry
        await wait_for(
            lambda: metric_total(metrics, "gha_completed_jobs_total") == 100,
            10,
            "the listener to see every JobCompleted",
        )
        calls = sim.api_calls() - calls_before
        stats = sim.stats()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{listener.metrics_port}") as http:
            scraped = (await http.get("/metrics")).text
            ready = await http.get("/readyz")
            healthy = await http.get("/healthz")

    per_job = calls / 100
    record_property("api_calls_per_job", round(per_job, 2))
    record_property("peak_runners", peak.peak)
    print(f"\n100-job burst, max 20: {per_job:.2f} API calls per job, peak runners {peak.peak}")
    assert stats["jobs"]["completed"] == 100 and stats["jobs"]["canceled"] == 0
    assert 0 < peak.peak <= 20 and runtime.peak_running <= 20
    assert len(runtime.launched) == len(set(runtime.launched)) == stats["requests"][JIT_ROUTE]
    assert len(runtime.launched) <= 105  # one runner per job, give or take a replacement
    assert per_job < 1.5
    assert metric_total(metrics, "gha_completed_jobs_total", job_result="succeeded") == 100
    assert metric_total(metrics, "gha_started_jobs_total", organization=ORG) == 100
    assert metric_total(metrics, "gha_listener_jit_batch_size_sum") == len(runtime.launched)
    assert 'gha_listener_api_requests_total{method="GET",route="{messageQueueUrl}"' in scraped
    assert 'gha_max_runners{enterprise="",name="burst",organization="acme"' in scraped
    assert ready.status_code == 200 and ready.json() == {"ready": True, "sessions": {"burst": True}}
    assert healthy.status_code == 200


class _CountingRegistry(MemoryRegistry):
    """Counts scaling decisions: each ``Scaler.converge`` step reads the count once."""

    decisions = 0

    async def count(self, scale_set_id: int) -> int:
        self.decisions += 1
        return await super().count(scale_set_id)


async def test_an_idle_scaler_decides_once_per_poll_not_in_a_loop(
    sim: SimulatorServer, state_dir: Path
) -> None:
    await create_scale_set(sim, "calm")
    registry = _CountingRegistry()
    settings = listener_settings(sim, state_dir, "calm", max_runners=3)
    polls = "GET /message"
    async with running_listener(settings, registry=registry) as listener:
        await wait_for(lambda: all(listener.ready().values()), 10, "the session")
        start_polls = sim.stats()["requests"].get(polls, 0)
        start = registry.decisions
        await wait_for(
            lambda: sim.stats()["requests"].get(polls, 0) >= start_polls + 3, 10, "3 empty polls"
        )
        decided = registry.decisions - start
    # Each empty poll (202) re-asserts the desired count once; nothing else is due while idle.
    assert decided <= 5, f"{decided} scaling decisions over 3 idle poll cycles"


async def test_runners_launch_as_their_configs_arrive(
    sim: SimulatorServer, state_dir: Path
) -> None:
    await create_scale_set(sim, "stream")
    runtime = InProcessRuntime(hold=asyncio.Event())
    settings = listener_settings(sim, state_dir, "stream", max_runners=8, jit_concurrency=2)
    async with running_listener(settings, runtime=runtime) as listener:
        await wait_for(lambda: all(listener.ready().values()), 10, "the session")
        sim.set_faults(latency_ms=100, routes=[JIT_ROUTE])
        sim.queue_jobs(["stream"], count=8)
        await wait_for(lambda: len(runtime.launched) == 8, 20, "8 runners")
    # Two configs in flight at a time: the first runners started while six were still to come.
    assert runtime.launch_batches[0] <= 2
    assert sum(runtime.launch_batches) == 8 and len(runtime.launch_batches) >= 4


async def test_local_processes_run_the_jobs(sim: SimulatorServer, state_dir: Path) -> None:
    await create_scale_set(sim, "procs")
    settings = listener_settings(sim, state_dir, "procs", max_runners=4)
    async with running_listener(settings) as listener, FleetPeak(sim) as peak:
        sim.queue_jobs(["procs"], count=8, duration_seconds=0.2)
        await wait_for(jobs_done(sim, 8), 60, "8 jobs on runner processes")
        ss_id = next(iter(listener.workers))

        async def released() -> bool:
            return await listener.registry.count(ss_id) == 0

        await wait_for(released, 10, "the runners to be released")
    assert sim.stats()["jobs"]["completed"] == 8
    assert peak.peak <= 4
    assert list(state_dir.glob("*.json")) == []  # every process ended and was cleaned up


@pytest.mark.parametrize("ghes_acquire", [False, True], ids=["github.com", "ghes"])
async def test_idle_surplus_runners_are_scaled_down(
    sim_factory: Callable[..., SimulatorServer], state_dir: Path, ghes_acquire: bool
) -> None:
    # Runners never come online, so the jobs' assignments time out and are cancelled
    # (JobCompleted "canceled" without a runner, in both message modes): the desired count
    # drops to 0 and the idle runners become surplus.
    # GHES: an offer not acquired within the timeout goes back to the queue, so give the
    # listener time to acquire before the assignment times out.
    sim = sim_factory(
        assign_timeout_seconds=2.0 if ghes_acquire else 0.5,
        max_reassignments=0,
        ghes_acquire=ghes_acquire,
    )
    await create_scale_set(sim, "shrink")
    runtime = InProcessRuntime(hold=asyncio.Event())
    settings = listener_settings(sim, state_dir, "shrink", max_runners=5)
    async with running_listener(settings, runtime=runtime) as listener:
        sim.queue_jobs(["shrink"], count=3)
        await wait_for(lambda: len(runtime.launched) == 3, 10, "3 runners")
        await wait_for(lambda: sim.stats()["jobs"]["canceled"] == 3, 10, "cancelled jobs")
        await wait_for(lambda: sim.stats()["runners"]["registered"] == 0, 10, "scale-down")
        # GitHub hears of the scale-down first; the slot, the runtime and the metric follow.
        scaled_down = "gha_listener_scaled_down_runners_total"
        await wait_for(
            lambda: metric_total(listener.metrics.registry, scaled_down) == 3, 10, "the metric"
        )
        ss_id = next(iter(listener.workers))
        assert await listener.registry.count(ss_id) == 0
        assert runtime.running == 0
        completed = "gha_completed_jobs_total"
        assert metric_total(listener.metrics.registry, completed, job_result="canceled") == 3
        assert listener._healthy()  # no loop ended on the runner-less messages


async def test_min_runners_keep_a_warm_pool(sim: SimulatorServer, state_dir: Path) -> None:
    await create_scale_set(sim, "warm")
    runtime = InProcessRuntime()
    settings = listener_settings(sim, state_dir, "warm", max_runners=6, min=2)
    async with running_listener(settings, runtime=runtime):
        await wait_for(lambda: sim.stats()["runners"]["online"] == 2, 10, "2 idle runners")
        sim.queue_jobs(["warm"], count=4, duration_seconds=0.2)
        await wait_for(jobs_done(sim, 4), 30, "4 jobs")
        await wait_for(
            lambda: (
                sim.stats()["runners"]
                == {
                    "registered": 2,
                    "online": 2,
                    "busy": 0,
                    "duplicate_names": 0,
                    "by_scale_set": {"warm": 2},
                }
            ),
            10,
            "the pool back at 2 idle runners",
        )


async def test_a_lingering_session_is_waited_out(
    sim_factory: Callable[..., SimulatorServer], state_dir: Path
) -> None:
    sim = sim_factory(session_ttl_seconds=1.0)
    scale_set = await create_scale_set(sim, "conflict")
    async with Client(sim.config_url(ORG), PatCredentials(SecretStr(SIM_PAT))) as client:
        await client.create_message_session(scale_set.id, "crashed-host")  # never polled
    settings = listener_settings(sim, state_dir, "conflict", max_runners=2)
    async with running_listener(settings, runtime=InProcessRuntime()) as listener:
        await wait_for(lambda: all(listener.ready().values()), 20, "the session")
        conflicts = metric_total(
            listener.metrics.registry, "gha_listener_session_events_total", event="conflict"
        )
        sim.queue_jobs(["conflict"], count=2, duration_seconds=0.1)
        await wait_for(jobs_done(sim, 2), 20, "jobs after the conflict")
    assert conflicts >= 1


async def test_an_active_session_elsewhere_stops_after_the_deadline(
    sim: SimulatorServer, state_dir: Path
) -> None:
    scale_set = await create_scale_set(sim, "taken")
    settings = listener_settings(
        sim, state_dir, "taken", max_runners=2, session_conflict_timeout_seconds=1.0
    )
    listener = Listener(settings, runtime=InProcessRuntime())
    async with Client(sim.config_url(ORG), PatCredentials(SecretStr(SIM_PAT))) as client:
        await client.create_message_session(scale_set.id, "other-listener")
        await listener.start()
        try:
            with pytest.raises(SessionConflictTimeout, match="another listener running"):
                await asyncio.wait_for(listener.run_until(asyncio.Event()), 15)
        finally:
            await listener.stop()


async def test_a_401_mid_poll_refreshes_the_session(sim: SimulatorServer, state_dir: Path) -> None:
    await create_scale_set(sim, "expiring")
    settings = listener_settings(sim, state_dir, "expiring", max_runners=3)
    async with running_listener(settings, runtime=InProcessRuntime()) as listener:
        await wait_for(lambda: all(listener.ready().values()), 10, "the session")
        sim.set_faults(mq_unauthorized_once=True)
        await wait_for(lambda: requests(sim, "PATCH") >= 1, 10, "a session refresh")
        sim.queue_jobs(["expiring"], count=3, duration_seconds=0.1)
        await wait_for(jobs_done(sim, 3), 20, "jobs after the refresh")
        assert all(listener.ready().values())


async def test_short_lived_queue_tokens_keep_being_refreshed(
    sim_factory: Callable[..., SimulatorServer], state_dir: Path
) -> None:
    sim = sim_factory(mq_token_ttl_seconds=1.0)
    await create_scale_set(sim, "rotating")
    settings = listener_settings(sim, state_dir, "rotating", max_runners=3)
    async with running_listener(settings, runtime=InProcessRuntime()):
        for batch in range(1, 4):
            sim.queue_jobs(["rotating"], count=2, duration_seconds=0.5)
            await wait_for(jobs_done(sim, 2 * batch), 20, f"batch {batch}")
    assert requests(sim, "PATCH") >= 2


async def test_ghes_job_offers_are_acquired(
    sim_factory: Callable[..., SimulatorServer], state_dir: Path
) -> None:
    sim = sim_factory(ghes_acquire=True)
    await create_scale_set(sim, "ghes")
    settings = listener_settings(sim, state_dir, "ghes", max_runners=5)
    async with running_listener(settings, runtime=InProcessRuntime()):
        sim.queue_jobs(["ghes"], count=5, duration_seconds=0.1)
        await wait_for(jobs_done(sim, 5), 20, "acquired jobs")
    assert requests(sim, "POST /_apis/runtime/runnerscalesets/{id}/acquirejobs") >= 1


async def test_one_process_serves_several_scale_sets_with_one_auth_chain(
    sim: SimulatorServer, state_dir: Path
) -> None:
    await create_scale_set(sim, "linux")
    await create_scale_set(sim, "arm")
    settings = listener_settings(
        sim,
        state_dir,
        "linux",
        max_runners=3,
        scale_sets=[{"name": "linux", "max_runners": 3}, {"name": "arm", "max_runners": 2}],
    )
    async with running_listener(settings, runtime=InProcessRuntime()) as listener:
        sim.queue_jobs(["linux"], count=4, duration_seconds=0.1)
        sim.queue_jobs(["arm"], count=3, duration_seconds=0.1)
        await wait_for(jobs_done(sim, 7), 30, "jobs on both scale sets")
        assert listener.ready() == {"linux": True, "arm": True}
    # One auth chain for the setup client and both scale sets' sessions, JITs and polls.
    assert requests(sim, "POST /api/v3/orgs/{org}/actions/runners/registration-token") == 1
