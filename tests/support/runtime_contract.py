"""The runtime contract: what the listener relies on from every :class:`Runtime`, run by each
runtime's tests (EC2 and ECS on moto, Kubernetes on the fake API server and on a real
kube-apiserver, local processes).

A :class:`Driver` plays the world around one runtime: the cloud reporting a runner's state
(an EventBridge event through SQS, a kubelet setting the pod phase, a process exiting).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from gha_scalesets.listener.runtimes.base import (
    LaunchResult,
    RunnerPhase,
    RunnerSpec,
    Runtime,
    RuntimeEvent,
)
from tests.support.runtimes import describe_and_list_calls, specs

SS = 7
ALIVE = frozenset({RunnerPhase.PENDING, RunnerPhase.RUNNING})
ENDED = frozenset({RunnerPhase.STOPPED, RunnerPhase.FAILED})
# Phases only move forward; both ends rank alike.
_RANK = {
    RunnerPhase.PENDING: 0,
    RunnerPhase.RUNNING: 1,
    RunnerPhase.STOPPED: 2,
    RunnerPhase.FAILED: 2,
}
_EVENT_TIMEOUT = 30.0


class Driver(Protocol):
    """One runtime under the contract and the world around it."""

    runtime: Runtime
    # A provider id of the runtime's shape that names no runner.
    unknown_id: str
    # Whether the runtime reports RUNNING by an event (a local process runs once launched).
    reports_running: bool

    async def report(self, runner: LaunchResult, phase: RunnerPhase) -> None:
        """The world tells the runtime ``runner`` is now ``phase`` (RUNNING, STOPPED: its job is
        done, FAILED: it crashed or lost its capacity)."""
        ...

    async def report_terminated(self, runners: Sequence[LaunchResult]) -> None:
        """What the cloud reports after the runtime terminated ``runners`` (EventBridge on AWS;
        nothing where the runtime sees the end itself)."""
        ...


class Events:
    """A runtime's event stream, read until a condition over everything read so far holds."""

    def __init__(self, runtime: Runtime) -> None:
        self._stream: AsyncIterator[RuntimeEvent] = runtime.events()
        self.seen: list[RuntimeEvent] = []

    async def until(self, done: Callable[[list[RuntimeEvent]], bool], what: str) -> None:
        try:
            async with asyncio.timeout(_EVENT_TIMEOUT):
                while not done(self.seen):
                    self.seen.append(await anext(self._stream))
        except TimeoutError:
            raise AssertionError(f"no events for {what}; got {self.seen}") from None

    def of(self, runner: LaunchResult) -> list[RuntimeEvent]:
        return [e for e in self.seen if e.provider_id == runner.provider_id]

    async def rest(self) -> list[RuntimeEvent]:
        """The events until the stream ends (it must end, the runtime being closed)."""
        async with asyncio.timeout(_EVENT_TIMEOUT):
            return [event async for event in self._stream]


def _ended(events: Events, *runners: LaunchResult) -> Callable[[list[RuntimeEvent]], bool]:
    return lambda _seen: all(any(e.phase in ENDED for e in events.of(r)) for r in runners)


def _reached(
    events: Events, phase: RunnerPhase, *runners: LaunchResult
) -> Callable[[list[RuntimeEvent]], bool]:
    return lambda _seen: all(any(e.phase is phase for e in events.of(r)) for r in runners)


async def _launch(runtime: Runtime, batch: list[RunnerSpec]) -> list[LaunchResult]:
    results = await runtime.launch(batch)
    assert [r.runner_name for r in results] == [s.runner_name for s in batch]
    assert [r.error for r in results] == [None] * len(batch)
    assert all(r.provider_id for r in results)
    return results


async def _running(driver: Driver, events: Events, runners: Sequence[LaunchResult]) -> None:
    """Report ``runners`` running and, where the runtime says so by an event, read it."""
    for runner in runners:
        await driver.report(runner, RunnerPhase.RUNNING)
    if driver.reports_running:
        await events.until(_reached(events, RunnerPhase.RUNNING, *runners), "RUNNING")


def _check_life(
    events: list[RuntimeEvent], runner: LaunchResult, ended: RunnerPhase, *, named: bool = True
) -> None:
    """The runner's events name it and its scale set (unless not ``named``: then a name, if
    any, is its own), never go back, and end in ``ended``."""
    assert events, f"no event for {runner.runner_name}"
    for event in events:
        if named or event.runner_name is not None:
            assert (event.runner_name, event.scale_set_id) == (runner.runner_name, SS), event
    ranks = [_RANK[e.phase] for e in events]
    assert ranks == sorted(ranks), [e.phase for e in events]
    assert [e.phase for e in events if e.phase in ENDED] == [ended]


async def check_launch_and_list(driver: Driver) -> None:
    """Launch returns one provider id per runner, in order; each runner is listed under its
    own scale set only, alive."""
    runtime = driver.runtime
    assert isinstance(runtime, Runtime)
    ours = await _launch(runtime, specs(3, scale_set_id=SS))
    theirs = await _launch(runtime, specs(2, scale_set_id=SS + 1, prefix="other"))
    assert len({r.provider_id for r in ours + theirs}) == 5

    for scale_set_id, launched in ((SS, ours), (SS + 1, theirs)):
        listed = await runtime.list_runners(scale_set_id)
        assert {(r.runner_name, r.provider_id) for r in listed} == {
            (r.runner_name, r.provider_id) for r in launched
        }
        assert all(r.scale_set_id == scale_set_id and r.phase in ALIVE for r in listed)
    assert await runtime.list_runners(SS + 2) == []


async def check_events(driver: Driver) -> None:
    """Events report a runner RUNNING, then STOPPED when its job is done or FAILED (with a
    reason) when it crashed, naming the runner and its scale set."""
    events = Events(driver.runtime)
    done, crashed = await _launch(driver.runtime, specs(2, scale_set_id=SS))
    await _running(driver, events, [done, crashed])

    await driver.report(done, RunnerPhase.STOPPED)
    await driver.report(crashed, RunnerPhase.FAILED)
    await events.until(_ended(events, done, crashed), "the runners' ends")

    _check_life(events.of(done), done, RunnerPhase.STOPPED)
    _check_life(events.of(crashed), crashed, RunnerPhase.FAILED)
    assert [e.reason for e in events.of(crashed) if e.phase is RunnerPhase.FAILED] != [None]
    if driver.reports_running:
        assert RunnerPhase.RUNNING in {e.phase for e in events.of(done)}


async def check_terminate(driver: Driver) -> None:
    """Terminate ends a runner (one STOPPED or FAILED event, and it is no longer listed alive),
    leaves the others, and is idempotent: twice, or for an unknown id, is not an error.

    The end of a terminated runner may come without its name (a runtime forgets what it
    terminated; the listener looks the provider id up in its registry)."""
    runtime = driver.runtime
    events = Events(runtime)
    gone, kept = await _launch(runtime, specs(2, scale_set_id=SS))
    await _running(driver, events, [gone, kept])
    # An id nobody knows does not raise (moto answers ECS's StopTask of an unknown task with a
    # 500, where AWS answers InvalidParameterException: only the raising is checked here).
    await runtime.terminate([driver.unknown_id])
    errors = Counter(getattr(runtime, "terminate_errors", Counter()))

    await runtime.terminate([str(gone.provider_id)])
    await runtime.terminate([str(gone.provider_id)])
    await driver.report_terminated([gone])
    await events.until(_ended(events, gone), "the terminated runner's end")

    alive = {r.provider_id for r in await runtime.list_runners(SS) if r.phase in ALIVE}
    assert alive == {kept.provider_id}
    assert getattr(runtime, "terminate_errors", Counter()) == errors
    # The other runner ends later: no second event of the terminated one came in between.
    await driver.report(kept, RunnerPhase.STOPPED)
    await events.until(_ended(events, kept), "the other runner's end")
    _check_life(events.of(gone), gone, events.of(gone)[-1].phase, named=False)
    _check_life(events.of(kept), kept, RunnerPhase.STOPPED)


async def check_launches_read_nothing(driver: Driver) -> None:
    """A scaling decision (a launch) reads no cloud state: describe/list calls are for
    reconciliation only (and for the Kubernetes watch's first list, before the first event)."""
    runtime = driver.runtime
    events = Events(runtime)
    first = await _launch(runtime, specs(1, scale_set_id=SS))
    await _running(driver, events, first)
    reads = describe_and_list_calls(runtime.api_calls)
    assert reads <= 1

    launched = list(first)
    for start, n in ((1, 4), (5, 10), (15, 1)):
        launched += await _launch(runtime, specs(n, scale_set_id=SS, start=start))
        assert describe_and_list_calls(runtime.api_calls) == reads
    listed = await runtime.list_runners(SS)
    assert {r.provider_id for r in listed} == {r.provider_id for r in launched}


async def check_close(driver: Driver) -> None:
    """Closing ends the event stream (whatever events it still had come first)."""
    runtime = driver.runtime
    events = Events(runtime)
    launched = await _launch(runtime, specs(1, scale_set_id=SS))
    await _running(driver, events, launched)
    await runtime.close()
    late = await events.rest()
    assert {e.provider_id for e in late} <= {r.provider_id for r in launched}


CHECKS = {
    check.__name__.removeprefix("check_"): check
    for check in (
        check_launch_and_list,
        check_events,
        check_terminate,
        check_launches_read_nothing,
        check_close,
    )
}
