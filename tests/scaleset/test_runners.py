"""Runners and JIT configs: single, batched, busy runners, and the lost-response recovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from gha_scalesets.scaleset import (
    Client,
    JobStillRunningError,
    RetryPolicy,
    RunnerExistsError,
    RunnerNotFoundError,
    ScaleSet,
    ScaleSetNotFoundError,
)
from gha_scalesets.simulator.jit import JitConfig
from gha_scalesets.simulator.testing import SimulatorServer
from tests.scaleset.lossy_proxy import LossyProxy
from tests.support.github import (
    JIT,
    REGISTRATION_TOKEN,
    RUNNER_REGISTRATION,
    ClientFactory,
    SleepRecorder,
    requests,
)


async def test_runner_lifecycle(client: Client, scale_set: ScaleSet) -> None:
    result = await client.generate_jit_config(scale_set.id, "runner-1", work_folder="_work")
    assert result.ok and result.runner is not None and result.config is not None
    jit = JitConfig.decode(result.config)
    assert (jit.runner_id, jit.runner_name, jit.scale_set_id) == (
        result.runner.id,
        "runner-1",
        scale_set.id,
    )
    assert "config" not in repr(result) and result.config not in repr(result)

    assert await client.get_runner(result.runner.id) == result.runner
    assert await client.get_runner_by_name("runner-1") == result.runner
    assert await client.get_runner_by_name("nobody") is None

    await client.remove_runner(result.runner.id)
    with pytest.raises(RunnerNotFoundError) as info:
        await client.get_runner(result.runner.id)
    assert info.value.status == 404
    with pytest.raises(RunnerNotFoundError):
        await client.remove_runner(result.runner.id)
    assert await client.get_runner_by_name("runner-1") is None


async def test_duplicate_runner_name_raises_runner_exists(
    client: Client, scale_set: ScaleSet
) -> None:
    await client.generate_jit_config(scale_set.id, "twin")
    with pytest.raises(RunnerExistsError) as info:
        await client.generate_jit_config(scale_set.id, "twin")
    assert info.value.status == 409
    assert "AgentExistsException" in info.value.type_name


async def test_jit_for_a_missing_scale_set(client: Client) -> None:
    with pytest.raises(ScaleSetNotFoundError):
        await client.generate_jit_config(999, "orphan")


async def test_busy_runner_cannot_be_removed(
    sim: SimulatorServer, client: Client, scale_set: ScaleSet
) -> None:
    session = await client.create_message_session(scale_set.id, owner="host-1")
    sim.queue_jobs([scale_set.name], count=1, duration_seconds=600)
    message = await client.get_message(session, max_capacity=1)  # dispatches the job to us
    assert message is not None
    result = await client.generate_jit_config(scale_set.id, "busy-1")
    assert result.config is not None
    jit = JitConfig.decode(result.config)
    auth = {"Authorization": f"Bearer {jit.secret}"}
    async with httpx.AsyncClient(base_url=f"{jit.url}/_sim/runner/{jit.runner_id}") as runner:
        assert (await runner.post("/online", headers=auth)).status_code == 204
        assert (await runner.post("/acquire", headers=auth)).status_code == 200

    with pytest.raises(JobStillRunningError) as info:
        await client.remove_runner(jit.runner_id)
    assert info.value.status == 400
    assert "busy-1" in str(info.value)


async def test_batch_returns_one_result_per_name_in_order(
    sim: SimulatorServer, client: Client, scale_set: ScaleSet
) -> None:
    taken = await client.generate_jit_config(scale_set.id, "taken")
    base_jit = requests(sim, JIT)
    names = [f"batch-{i}" for i in range(24)] + ["taken", "batch-3"]

    results = await client.generate_jit_configs(scale_set.id, names, concurrency=8)

    assert [r.name for r in results] == names
    failed = {i for i, r in enumerate(results) if not r.ok}
    assert 24 in failed and isinstance(results[24].error, RunnerExistsError)
    # The two "batch-3" requests race: exactly one wins, the other is told the name is taken.
    assert len(failed & {3, 25}) == 1
    assert len(failed) == 2
    for result in results:
        if result.ok:
            assert result.runner is not None and result.config is not None
            assert JitConfig.decode(result.config).runner_id == result.runner.id
    assert taken.runner is not None
    assert len({r.runner.id for r in results if r.runner}) == 24
    # One request per runner; the auth chain ran once for the whole test.
    assert requests(sim, JIT) - base_jit == len(names)
    assert requests(sim, REGISTRATION_TOKEN) == requests(sim, RUNNER_REGISTRATION) == 1
    assert client.auth_chain_runs == 1


async def test_batch_failures_are_per_runner(client: Client) -> None:
    results = await client.generate_jit_configs(404, ["a", "b"], concurrency=2)
    assert [type(r.error) for r in results] == [ScaleSetNotFoundError, ScaleSetNotFoundError]
    assert all(r.config is None and r.runner is None for r in results)
    with pytest.raises(ValueError, match="concurrency"):
        await client.generate_jit_configs(404, ["a"], concurrency=0)


class _InFlight(httpx.AsyncBaseTransport):
    """A real HTTP transport that records the peak number of concurrent requests."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.current = self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.current += 1
        self.peak = max(self.peak, self.current)
        try:
            response = await self._inner.handle_async_request(request)
            await response.aread()
            return response
        finally:
            self.current -= 1

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.mark.parametrize("concurrency", [1, 6])
async def test_batch_concurrency_is_bounded(
    sim: SimulatorServer, make_client: ClientFactory, scale_set: ScaleSet, concurrency: int
) -> None:
    transport = _InFlight()
    async with httpx.AsyncClient(transport=transport) as http:
        client = make_client(http=http)
        await client.get_runner_group_by_name("Default")  # warm the auth chain
        sim.set_faults(latency_ms=40, routes=[JIT])
        results = await client.generate_jit_configs(
            scale_set.id, [f"c{concurrency}-{i}" for i in range(18)], concurrency=concurrency
        )
    assert all(r.ok for r in results)
    assert transport.peak == concurrency


class _Gated(httpx.AsyncBaseTransport):
    """A real HTTP transport that holds JIT requests until the test lets them through."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._gate = asyncio.Semaphore(0)
        self.sent = 0

    def allow(self, count: int) -> None:
        for _ in range(count):
            self._gate.release()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/generatejitconfig"):
            await self._gate.acquire()
            self.sent += 1
        response = await self._inner.handle_async_request(request)
        await response.aread()
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_stream_yields_configs_as_they_arrive_and_cancels_the_rest_on_close(
    sim: SimulatorServer, make_client: ClientFactory, scale_set: ScaleSet
) -> None:
    transport = _Gated()
    async with httpx.AsyncClient(transport=transport) as http:
        client = make_client(http=http)
        await client.get_runner_group_by_name("Default")  # warm the auth chain
        names = [f"stream-{i}" for i in range(6)]
        stream = client.stream_jit_configs(scale_set.id, names, concurrency=3)
        transport.allow(1)
        first = await anext(stream)
        # One config arrived while the others were still held: it is handed over at once.
        assert len(first) == 1 and first[0].ok and first[0].name in names
        transport.allow(1)
        second = await anext(stream)
        assert len(second) == 1 and second[0].name != first[0].name
        await stream.aclose()  # the four requests still waiting are cancelled
        assert transport.sent == 2
    assert sim.stats()["runners"]["registered"] == 2


async def test_batch_survives_injected_server_errors_without_duplicates(
    sim: SimulatorServer,
    make_client: ClientFactory,
    patient_retry: RetryPolicy,
    scale_set: ScaleSet,
    sleeps: SleepRecorder,
) -> None:
    client = make_client(retry=patient_retry)
    sim.set_faults(error_rate=0.3, error_status=502, routes=[JIT])
    names = [f"flaky-{i}" for i in range(30)]
    results = await client.generate_jit_configs(scale_set.id, names, concurrency=10)
    assert all(r.ok for r in results), [str(r.error) for r in results if r.error]
    assert sleeps.waits  # some attempts were retried
    assert sim.stats()["runners"]["registered"] == len(names)


@pytest.fixture
async def proxy(sim: SimulatorServer) -> AsyncIterator[LossyProxy]:
    async with LossyProxy(httpx.URL(sim.url).port or 80) as lossy:
        yield lossy


async def test_lost_jit_response_is_recovered_without_a_second_runner(
    sim: SimulatorServer, make_client: ClientFactory, proxy: LossyProxy, sleeps: SleepRecorder
) -> None:
    """The first request is processed but its response is lost; the retry meets
    AgentExistsException, finds our orphan, removes it and registers once more."""
    client = make_client(url=proxy.url("acme"))
    scale_set = await client.create_scale_set(name="lossy", runner_group_id=1)
    proxy.lose_next("generatejitconfig")

    result = await client.generate_jit_config(scale_set.id, "lost-1")

    assert proxy.lost == 1 and len(sleeps.waits) == 1
    assert result.ok and result.runner is not None and result.config is not None
    assert requests(sim, JIT) == 3  # processed-but-lost, conflict, re-created
    assert requests(sim, "DELETE /_apis/distributedtask/pools/0/agents/{id}") == 1
    assert sim.stats()["runners"]["registered"] == 1
    survivor = await client.get_runner_by_name("lost-1")
    assert survivor == result.runner
    assert JitConfig.decode(result.config).runner_id == survivor.id


async def test_lost_responses_in_a_batch_leave_exactly_one_runner_per_name(
    sim: SimulatorServer, make_client: ClientFactory, proxy: LossyProxy
) -> None:
    client = make_client(url=proxy.url("acme"))
    scale_set = await client.create_scale_set(name="lossy-batch", runner_group_id=1)
    proxy.lose_next("generatejitconfig", count=5)
    names = [f"lb-{i}" for i in range(20)]

    results = await client.generate_jit_configs(scale_set.id, names, concurrency=5)

    assert proxy.lost == 5
    assert all(r.ok for r in results), [str(r.error) for r in results if r.error]
    assert sim.stats()["runners"]["registered"] == len(names)
    for result in results:
        assert result.runner is not None and result.config is not None
        assert JitConfig.decode(result.config).runner_id == result.runner.id
        assert await client.get_runner_by_name(result.name) == result.runner


async def test_lost_create_and_delete_responses_are_idempotent(
    sim: SimulatorServer, make_client: ClientFactory, proxy: LossyProxy
) -> None:
    client = make_client(url=proxy.url("acme"))
    proxy.lose_next("POST /_services/pipelines/")  # the first admin POST: create scale set
    created = await client.create_scale_set(name="adopted", runner_group_id=1)
    assert created.name == "adopted" and proxy.lost == 1
    assert requests(sim, "POST /_apis/runtime/runnerscalesets") == 2

    runner = await client.generate_jit_config(created.id, "r-1")
    assert runner.runner is not None
    proxy.lose_next("DELETE")
    await client.remove_runner(runner.runner.id)
    proxy.lose_next("DELETE")
    await client.delete_scale_set(created.id)
    assert proxy.lost == 3
    assert requests(sim, "DELETE /_apis/runtime/runnerscalesets/{id}") == 2
    assert sim.stats()["runners"]["registered"] == 0
    with pytest.raises(ScaleSetNotFoundError):
        await client.get_scale_set(created.id)


async def test_name_taken_without_a_lost_response_is_not_touched(
    sim: SimulatorServer, client: Client, scale_set: ScaleSet
) -> None:
    first = await client.generate_jit_config(scale_set.id, "mine")
    with pytest.raises(RunnerExistsError):
        await client.generate_jit_config(scale_set.id, "mine")
    assert await client.get_runner_by_name("mine") == first.runner
    assert requests(sim, "DELETE /_apis/distributedtask/pools/0/agents/{id}") == 0
