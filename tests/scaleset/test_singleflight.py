"""Single-flight semantics: shared results, shared failures, a cancelled leader."""

from __future__ import annotations

import asyncio

import pytest

from gha_scalesets.scaleset.singleflight import SingleFlight


async def test_concurrent_callers_share_one_run() -> None:
    flights: SingleFlight[int] = SingleFlight()
    runs = 0
    gate = asyncio.Event()

    async def work() -> int:
        nonlocal runs
        runs += 1
        await gate.wait()
        return 42

    callers = [asyncio.create_task(flights.run("k", work)) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*callers) == [42] * 10
    assert runs == 1
    assert await flights.run("k", work) == 42 and runs == 2  # nothing cached after the flight


async def test_failures_are_shared_not_retried_per_caller() -> None:
    flights: SingleFlight[int] = SingleFlight()
    runs = 0

    async def fail() -> int:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.01)
        raise ValueError("bad credentials")

    results = await asyncio.gather(
        *(flights.run("k", fail) for _ in range(5)), return_exceptions=True
    )
    assert runs == 1 and all(isinstance(r, ValueError) for r in results)


async def test_a_cancelled_leader_hands_over_to_a_waiter() -> None:
    flights: SingleFlight[str] = SingleFlight()
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(10)
        return "leader"

    async def quick() -> str:
        return "waiter"

    leader = asyncio.create_task(flights.run("k", slow))
    await started.wait()
    waiter = asyncio.create_task(flights.run("k", quick))
    await asyncio.sleep(0)
    leader.cancel()
    assert await waiter == "waiter"
    with pytest.raises(asyncio.CancelledError):
        await leader
