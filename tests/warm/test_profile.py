"""The learned demand profile survives a restart and a takeover: it is kept in the registry
(memory, DynamoDB) or, on Kubernetes, a ConfigMap, and a new leader continues from it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from benchmarks.replay import ReplayRuntime
from gha_scalesets.listener.app import Listener
from gha_scalesets.listener.config import (
    K8sRuntimeConfig,
    ListenerSettings,
)
from gha_scalesets.listener.leadership import MemoryLeaseStore
from gha_scalesets.listener.registry import build_profile_store
from gha_scalesets.listener.registry.cache import CachedCountRegistry
from gha_scalesets.listener.registry.dynamodb import (
    DynamoDBRegistry,
)
from gha_scalesets.listener.registry.kubernetes import KubernetesProfileStore, config_map_name
from gha_scalesets.listener.registry.memory import MemoryRegistry
from gha_scalesets.listener.warm import ProfileStore
from gha_scalesets.scaleset import Client, PatCredentials
from gha_scalesets.scaleset.auth import TokenCache
from gha_scalesets.simulator.config import SimulatorConfig
from gha_scalesets.simulator.inprocess import InProcessSimulator
from gha_scalesets.simulator.virtual_time import VirtualTimeLoop
from tests.fixtures.k8s import FakeApiServer
from tests.fixtures.sim import SIM_PAT
from tests.support.aws import registry_table
from tests.support.profiles import a_profile

NAMESPACE = "runners"
MONDAY_7 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC).timestamp()
PAT = SIM_PAT


@pytest.fixture(params=["memory", "dynamodb", "kubernetes"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ProfileStore]:
    profiles: ProfileStore
    if request.param == "memory":
        profiles = MemoryRegistry()
    elif request.param == "dynamodb":
        table, client = registry_table(request.getfixturevalue("aws"), "profiles")
        profiles = CachedCountRegistry(DynamoDBRegistry(table, client), 5.0)
    else:
        api: FakeApiServer = request.getfixturevalue("k8s_api")
        profiles = KubernetesProfileStore(K8sRuntimeConfig(namespace=NAMESPACE, api_url=api.url))
    yield profiles
    await profiles.close()


async def test_a_saved_profile_loads_back_per_scale_set(store: ProfileStore) -> None:
    assert await store.load_profile(1) is None
    await store.save_profile(1, a_profile(3.0))
    await store.save_profile(2, a_profile(7.0))
    await store.save_profile(1, a_profile(5.0))  # a later save replaces the earlier one
    assert await store.load_profile(1) == a_profile(5.0)
    assert await store.load_profile(2) == a_profile(7.0)


async def test_the_profile_item_is_not_a_runner(aws: str) -> None:
    registry = DynamoDBRegistry(*registry_table(aws, "profiles-runners"))
    await registry.reserve(1, ["r-1"], 5)
    await registry.save_profile(1, a_profile(2.0))
    assert [r.runner_name for r in await registry.list(1)] == ["r-1"]
    assert await registry.count(1) == 1 and await registry.repair_count(1) == 0
    await registry.close()


async def test_kubernetes_keeps_the_profile_in_a_labelled_config_map(
    k8s_api: FakeApiServer,
) -> None:
    store = KubernetesProfileStore(K8sRuntimeConfig(namespace=NAMESPACE, api_url=k8s_api.url))
    try:
        await store.save_profile(42, a_profile(1.0))
        await store.save_profile(42, a_profile(2.0))
    finally:
        await store.close()
    stored = k8s_api.state.get("configmaps", NAMESPACE, config_map_name(42))
    assert stored is not None
    assert stored["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "gha-scalesets"}
    assert k8s_api.state.requests["create configmaps"] == 1
    assert k8s_api.state.requests["patch configmaps"] == 2  # the first found nothing to patch


def test_profile_store_is_the_registry_except_on_kubernetes_pods() -> None:
    base = {"github_config_url": "https://github.com/acme", "credentials": {"token": "x"}}
    local = ListenerSettings(**base, scale_sets=[{"name": "a"}])
    registry = MemoryRegistry()
    assert build_profile_store(local, registry) is registry
    k8s = ListenerSettings(
        **base, scale_sets=[{"name": "a"}], runtime="k8s", k8s={"namespace": NAMESPACE}
    )
    assert isinstance(build_profile_store(k8s, registry), KubernetesProfileStore)
    on_dynamodb = ListenerSettings(
        **base,
        scale_sets=[{"name": "a"}],
        runtime="k8s",
        k8s={"namespace": NAMESPACE},
        registry={"type": "dynamodb", "table_name": "t"},
    )
    assert build_profile_store(on_dynamodb, registry) is registry


# -- a takeover keeps what the leader learned ------------------------------------------------


async def _takeover() -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any], int, int]:
    """Two replicas on one scale set in virtual time: A leads while jobs arrive 08:00-10:00,
    then stops; B takes over. Returns what A learned, what the registry holds, B's profile,
    and B's warm target on Tuesday 08:58 (with no arrival seen by B) and at 03:00."""
    loop = asyncio.get_running_loop()
    config = SimulatorConfig(pats=(PAT,), runner_hold_seconds=3600.0, assign_timeout_seconds=3600)
    async with InProcessSimulator(config, epoch=MONDAY_7 - loop.time()) as sim:
        clock = sim.clock.now
        admin = Client(sim.config_url("acme"), PatCredentials(PAT), http=sim.http())
        group = await admin.get_runner_group_by_name("Default")
        created = await admin.create_scale_set(name="learn", runner_group_id=group.id)
        registry, leases = MemoryRegistry(clock=clock), MemoryLeaseStore()
        adaptive = {"max_idle_runner_minutes_per_hour": 1200, "boot_seconds": 60}

        async def replica(owner: str) -> tuple[Listener, asyncio.Event, asyncio.Task[None]]:
            settings = ListenerSettings(
                github_config_url=sim.config_url("acme"),
                credentials={"token": PAT},
                scale_sets=[
                    {"scale_set_id": created.id, "max_runners": 50, "warm": {"adaptive": adaptive}}
                ],
                metrics_port=None,
                owner_name=owner,
            )
            client = Client(
                sim.config_url("acme"),
                PatCredentials(PAT),
                http=sim.http(),
                token_cache=TokenCache(clock),
            )
            listener = Listener(
                settings,
                registry=registry,
                runtime=ReplayRuntime(sim, boot_seconds=60),
                leases=leases,
                client=client,
                clock=clock,
            )
            await listener.start()
            stop = asyncio.Event()
            return listener, stop, asyncio.create_task(listener.run_until(stop))

        a, stop_a, serving_a = await replica("replica-a")
        b, stop_b, serving_b = await replica("replica-b")
        await asyncio.sleep(HOUR)  # 08:00
        assert a.leading() == {"learn": True} and b.leading() == {"learn": False}
        for _ in range(2 * 60 * 6):  # 6 jobs per minute for two hours
            sim.queue(["learn"], 120.0)
            await asyncio.sleep(10)
        await asyncio.sleep(20 * 60)  # 10:20: the 10:00-10:15 slot is learned and saved
        learned = a.workers[created.id].scaler.warm.forecast.profile.to_store()  # type: ignore[union-attr]
        stored = await registry.load_profile(created.id)
        stop_a.set()
        await serving_a
        await a.stop()  # graceful: the lease is released
        await asyncio.sleep(10)
        assert b.leading() == {"learn": True}
        scaler = b.workers[created.id].scaler
        assert scaler.warm.forecast is not None
        taken_over = scaler.warm.forecast.profile.to_store()
        # B's policy asked at later times (in order: it learns as time passes)
        night = scaler.warm.target(MONDAY_7 + 20 * HOUR).runners  # Tuesday 03:00
        ahead = scaler.warm.target(MONDAY_7 + 25 * HOUR + 58 * 60).runners  # Tuesday 08:58
        stop_b.set()
        await serving_b
        await b.stop()
        await admin.aclose()
    return learned, stored, taken_over, ahead, night


HOUR = 3600.0


def test_a_takeover_keeps_the_learned_profile() -> None:
    loop = VirtualTimeLoop()
    try:
        learned, stored, taken_over, ahead, night = loop.run_until_complete(_takeover())
    finally:
        loop.close()
    assert stored == learned  # saved to the registry as the slots were learned
    slots = [rate for rate in learned["weekday"] if rate]
    assert len(slots) >= 8 and all(rate == pytest.approx(6, rel=0.1) for rate in slots)
    assert taken_over == learned  # the new leader continues from it
    # and acts on it: warm for Tuesday's 09:00 before a single job arrived in its term
    assert ahead >= 8
    assert night == 0
