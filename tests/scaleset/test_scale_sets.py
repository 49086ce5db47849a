"""Runner groups and scale sets against the simulator, including the opt-in read cache."""

from __future__ import annotations

import asyncio

import pytest

from gha_scalesets.scaleset import (
    Client,
    ConflictError,
    Label,
    RunnerGroupNotFoundError,
    ScaleSet,
    ScaleSetNotFoundError,
)
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_RUNNER_GROUP
from tests.support.github import GET_SCALE_SET, ClientFactory, requests


async def test_runner_group_lookup(client: Client) -> None:
    default = await client.get_runner_group_by_name("Default")
    assert (default.id, default.is_default_group) == (1, True)
    gpu = await client.get_runner_group_by_name(SIM_RUNNER_GROUP)
    assert gpu.name == SIM_RUNNER_GROUP and not gpu.is_default_group
    with pytest.raises(RunnerGroupNotFoundError, match="no runner group named 'nope'"):
        await client.get_runner_group_by_name("nope")


async def test_scale_set_lifecycle(client: Client) -> None:
    gpu = await client.get_runner_group_by_name(SIM_RUNNER_GROUP)
    created = await client.create_scale_set(
        name="linux-x64", runner_group_id=1, labels=["linux-x64", Label(name="fast")]
    )
    assert created.id > 0 and created.runner_group_name == "Default"
    assert [label.name for label in created.labels] == ["linux-x64", "fast"]
    assert created.runner_setting.disable_update is True
    assert created.statistics is not None

    assert await client.get_scale_set(created.id) == created
    assert await client.get_scale_set_by_name(1, "linux-x64") == created
    assert await client.get_scale_set_by_name(1, "missing") is None

    updated = await client.update_scale_set(
        created.id, name="linux-arm", labels=["arm64"], runner_group_id=gpu.id
    )
    assert (updated.name, updated.runner_group_id) == ("linux-arm", gpu.id)
    assert [label.name for label in updated.labels] == ["arm64"]
    assert updated.runner_setting.disable_update is True  # untouched by a partial update
    assert await client.get_scale_set_by_name(1, "linux-x64") is None
    assert (await client.get_scale_set_by_name(gpu.id, "linux-arm")) == updated

    await client.delete_scale_set(created.id)
    with pytest.raises(ScaleSetNotFoundError, match="pulumi refresh") as info:
        await client.get_scale_set(created.id)
    assert info.value.status == 404
    assert "RunnerScaleSetNotFoundException" in info.value.type_name
    with pytest.raises(ScaleSetNotFoundError):
        await client.delete_scale_set(created.id)
    with pytest.raises(ScaleSetNotFoundError):
        await client.update_scale_set(created.id, name="x")


async def test_labels_default_to_the_scale_set_name(client: Client) -> None:
    created = await client.create_scale_set(name="plain", runner_group_id=1)
    assert [(label.name, label.type) for label in created.labels] == [("plain", "System")]


async def test_duplicate_name_is_a_conflict(client: Client, scale_set: ScaleSet) -> None:
    with pytest.raises(ConflictError) as info:
        await client.create_scale_set(name=scale_set.name, runner_group_id=1)
    assert info.value.status == 409
    assert "already exists" in info.value.message


async def test_read_cache_serves_repeats_and_is_invalidated_by_writes(
    sim: SimulatorServer, make_client: ClientFactory
) -> None:
    client = make_client(cache_ttl=60)
    created = await client.create_scale_set(name="cached", runner_group_id=1)
    before = requests(sim, GET_SCALE_SET)

    results = await asyncio.gather(*(client.get_scale_set(created.id) for _ in range(20)))
    assert all(r == created for r in results)
    assert requests(sim, GET_SCALE_SET) == before  # the create response primed the cache

    results[0].name = "mutated locally"
    assert (await client.get_scale_set(created.id)).name == "cached"  # copies are handed out

    await client.update_scale_set(created.id, name="renamed")
    assert (await client.get_scale_set(created.id)).name == "renamed"
    # the update reads the scale set afresh (its body is the whole scale set); its answer
    # primes the cache for the read after it
    assert requests(sim, GET_SCALE_SET) == before + 1
    assert client.cache_hits >= 20


async def test_concurrent_cold_reads_share_one_request(
    sim: SimulatorServer, make_client: ClientFactory
) -> None:
    writer = make_client()
    created = await writer.create_scale_set(name="shared", runner_group_id=1)
    reader = make_client(cache_ttl=60)
    before = requests(sim, GET_SCALE_SET)
    groups = await asyncio.gather(*(reader.get_runner_group_by_name("Default") for _ in range(10)))
    sets = await asyncio.gather(*(reader.get_scale_set(created.id) for _ in range(10)))
    assert {g.id for g in groups} == {1}
    assert {s.id for s in sets} == {created.id}
    assert requests(sim, GET_SCALE_SET) == before + 1
    assert requests(sim, "GET /_apis/runtime/runnergroups/") == 1


async def test_without_cache_every_read_hits_the_service(
    sim: SimulatorServer, client: Client, scale_set: ScaleSet
) -> None:
    before = requests(sim, GET_SCALE_SET)
    for _ in range(3):
        await client.get_scale_set(scale_set.id)
    assert requests(sim, GET_SCALE_SET) == before + 3
