"""The registry contract, run against the in-memory store and DynamoDB (moto server over HTTP)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gha_scalesets.listener.config import (
    AwsConfig,
    DynamoDBRegistryConfig,
    ListenerSettings,
    MemoryRegistryConfig,
)
from gha_scalesets.listener.registry import build_registry
from gha_scalesets.listener.registry.base import Registry, RunnerState, UnknownRunnerError
from gha_scalesets.listener.registry.cache import CachedCountRegistry
from gha_scalesets.listener.registry.dynamodb import (
    DynamoDBRegistry,
    create_table,
    make_dynamodb_client,
)
from gha_scalesets.listener.registry.memory import MemoryRegistry
from tests.support.aws import registry_table

SS = 7


def dynamodb_registry(endpoint: str) -> DynamoDBRegistry:
    return DynamoDBRegistry(*registry_table(endpoint, "runners"))


@pytest.fixture(params=["memory", "dynamodb"])
async def registry(request: pytest.FixtureRequest) -> AsyncIterator[Registry]:
    if request.param == "memory":
        store: Registry = MemoryRegistry()
    else:
        store = dynamodb_registry(request.getfixturevalue("aws"))
    yield store
    await store.close()


async def test_reserve_never_exceeds_max_and_counts(registry: Registry) -> None:
    assert await registry.reserve(SS, ["a", "b", "c"], max_runners=2) == ["a", "b"]
    assert await registry.reserve(SS, ["d"], max_runners=2) == []
    assert await registry.count(SS) == 2
    assert await registry.reserve(SS, ["d", "e"], max_runners=3) == ["d"]
    assert {r.runner_name for r in await registry.list(SS)} == {"a", "b", "d"}
    assert await registry.count(SS + 1) == 0


async def test_reserve_skips_existing_names(registry: Registry) -> None:
    await registry.reserve(SS, ["a"], 10)
    assert await registry.reserve(SS, ["a", "b"], 10) == ["b"]
    assert await registry.count(SS) == 2


async def test_release_is_idempotent_and_uncounts_once(registry: Registry) -> None:
    await registry.reserve(SS, ["a", "b"], 5)
    assert await registry.release(SS, "a") is True
    assert await registry.release(SS, "a") is False
    assert await registry.count(SS) == 1
    assert await registry.get(SS, "a") is None


async def test_update_changes_fields_and_provider_lookup(registry: Registry) -> None:
    await registry.reserve(SS, ["a"], 5)
    await registry.update(SS, "a", state=RunnerState.LAUNCHED, runner_id=42, provider_id="i-1")
    record = await registry.get(SS, "a")
    assert record is not None
    assert (record.state, record.runner_id, record.provider_id) == (RunnerState.LAUNCHED, 42, "i-1")
    assert record.created_at > 0 and record.updated_at >= record.created_at
    found = await registry.find_by_provider_id("i-1")
    assert found is not None and found.runner_name == "a"
    await registry.update(SS, "a", state="busy", job_id="job-9")
    record = await registry.get(SS, "a")
    assert record is not None and (record.state, record.job_id) == (RunnerState.BUSY, "job-9")
    assert await registry.release(SS, "a")
    assert await registry.find_by_provider_id("i-1") is None
    with pytest.raises(UnknownRunnerError):
        await registry.update(SS, "a", state=RunnerState.DONE)
    with pytest.raises(ValueError, match="cannot change"):
        await registry.update(SS, "a", created_at=1.0)


async def test_sequences_never_repeat(registry: Registry) -> None:
    firsts = [await registry.next_sequence(SS, n) for n in (3, 1, 5)]
    assert firsts == [1, 4, 5]
    assert await registry.next_sequence(SS + 1, 2) == 1


async def test_concurrent_reservations_respect_max(registry: Registry) -> None:
    batches = [[f"r{i}-{j}" for j in range(4)] for i in range(6)]
    granted = await asyncio.gather(*(registry.reserve(SS, b, 10) for b in batches))
    assert sum(len(g) for g in granted) == 10
    assert await registry.count(SS) == 10
    assert len(await registry.list(SS)) == 10


async def test_dynamodb_state_survives_a_new_instance(aws: str) -> None:
    first = dynamodb_registry(aws)
    await first.next_sequence(SS, 4)
    await first.reserve(SS, ["a", "b"], 3)
    await first.update(SS, "b", provider_id="p-b", state=RunnerState.LAUNCHED)
    second = DynamoDBRegistry(
        first._table,
        make_dynamodb_client(
            DynamoDBRegistryConfig(table_name=first._table, region="us-east-1", endpoint_url=aws),
            AwsConfig(),
        ),
    )
    assert await second.count(SS) == 2
    assert await second.reserve(SS, ["c", "d"], 3) == ["c"]
    assert await second.next_sequence(SS, 1) == 5
    found = await second.find_by_provider_id("p-b")
    assert found is not None and found.state is RunnerState.LAUNCHED
    assert found.expires_at is not None and found.expires_at > found.updated_at


async def test_repair_count_follows_vanished_items(aws: str) -> None:
    store = dynamodb_registry(aws)
    await store.reserve(SS, ["a", "b", "c"], 5)
    assert await store.repair_count(SS) == 0
    # An item expired by TTL disappears without decrementing the count.
    store._client.delete_item(
        TableName=store._table, Key={"pk": {"S": f"scaleset#{SS}"}, "sk": {"S": "runner#b"}}
    )
    assert await store.count(SS) == 3
    assert await store.repair_count(SS) == -1
    assert await store.count(SS) == 2
    assert await store.reserve(SS, ["d", "e", "f"], 5) == ["d", "e", "f"]


async def test_count_cache_hits_and_tracks_own_writes() -> None:
    now = [0.0]
    lookups: list[bool] = []
    cached = CachedCountRegistry(
        MemoryRegistry(), ttl_seconds=5, clock=lambda: now[0], on_lookup=lookups.append
    )
    assert await cached.count(SS) == 0
    await cached.reserve(SS, ["a", "b"], 5)
    assert await cached.count(SS) == 2
    await cached.release(SS, "a")
    assert await cached.count(SS) == 1
    await cached.inner.reserve(SS, ["x"], 5)  # a write behind the cache's back ...
    assert await cached.count(SS) == 1
    now[0] = 6.0  # ... is seen once the entry is older than the TTL
    assert await cached.count(SS) == 2
    assert lookups == [False, True, True, True, False]


async def test_settings_build_a_cached_dynamodb_registry(aws: str) -> None:
    settings = ListenerSettings(
        github_config_url="https://github.com/acme",
        credentials={"token": "ghp_unused"},
        scale_sets=[{"name": "linux"}],
        registry={"type": "dynamodb", "table_name": "built", "endpoint_url": aws},
        aws={"region": "us-east-1"},
    )
    assert isinstance(settings.registry, DynamoDBRegistryConfig)
    create_table(make_dynamodb_client(settings.registry, settings.aws), "built")
    lookups: list[bool] = []
    registry = build_registry(settings, on_cache_lookup=lookups.append)
    assert isinstance(registry, CachedCountRegistry)
    assert await registry.reserve(SS, ["a", "b"], 1) == ["a"]
    assert [await registry.count(SS) for _ in range(3)] == [1, 1, 1]
    assert lookups == [False, True, True]
    memory = build_registry(settings.model_copy(update={"registry": MemoryRegistryConfig()}))
    assert isinstance(memory, MemoryRegistry)
    assert await memory.next_sequence(SS, 1) > 1_000_000  # clock-seeded: unique across restarts
