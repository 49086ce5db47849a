"""Pacing with an injected clock: window budgets, blocks, adaptive concurrency, learned
ceilings, several credentials. No HTTP here: the pacer is driven with canned responses, and
the clock only moves when the pacer sleeps."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gha_scalesets.scaleset import RateLimitedError
from gha_scalesets.scaleset.pacing import Pacer, PacingSettings, Ticket, route_class
from tests.support.clocks import FakeClock

OK = httpx.Response(200)


def limited(status: int = 429, text: str = "", **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, text=text)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_000_000.0)


def pacer(clock: FakeClock, labels: tuple[str, ...] = ("a",), **settings: object) -> Pacer:
    return Pacer(labels, PacingSettings(**settings), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]


async def send(p: Pacer, cls: str = "jit", response: httpx.Response = OK, **kw: object) -> Ticket:
    """One request through the pacer: wait, send at the clock's time, book the answer."""
    ticket = await p.acquire(cls, **kw)  # type: ignore[arg-type]
    ticket.lane.send(ticket)
    ticket.lane.finish(ticket, response, p.now())
    return ticket


def test_route_classes() -> None:
    assert route_class("_apis/runtime/runnerscalesets/{scaleSetId}/generatejitconfig") == "jit"
    assert route_class("_apis/runtime/runnerscalesets/{scaleSetId}/sessions") == "admin"
    assert route_class("{messageQueueUrl}") == "queue"
    assert route_class("_apis/runtime/runnerscalesets/{scaleSetId}/acquirejobs") == "queue"
    assert route_class("orgs/{org}/actions/runners/registration-token") == "rest"


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown route classes"):
        PacingSettings(ceilings={"graphql": 10})
    with pytest.raises(ValueError, match="at least 1"):
        PacingSettings(ceilings={"jit": 0})


async def test_window_budget_paces_to_the_ceiling(clock: FakeClock) -> None:
    p = pacer(clock, ceilings={"jit": 3}, window_seconds=10, window_margin=0.1)
    start = clock.now
    sent = [(await send(p)).sent_at for _ in range(7)]
    offsets = [round(t - start, 3) for t in sent if t is not None]
    # three at once, then each as the oldest leaves the (10 s + 10 %) window
    assert offsets == [0, 0, 0, 11, 11, 11, 22]
    assert clock.sleeps == [11, 11]


async def test_no_request_goes_out_during_a_block(clock: FakeClock) -> None:
    p = pacer(clock, learn=False)
    await send(p)
    refused = await send(p, response=limited(429, **{"Retry-After": "30"}))
    assert refused.lane.blocked_for("jit", clock.now) == 30
    # every other task queues behind the block, and goes out only when it is over
    sent = await asyncio.gather(*(send(p) for _ in range(5)))
    assert all(t.sent_at == refused.sent_at + 30 for t in sent)
    # the block is per class: admin requests of the same credential are not held
    admin = await send(p, "admin")
    assert admin.sent_at is not None
    snapshot = p.snapshot()[0]["classes"]["jit"]
    assert (snapshot["refused"], snapshot["refused_after_signal"]) == (1, 0)
    assert snapshot["blocked_seconds"] == 30


async def test_no_header_means_a_minute_then_doubling(clock: FakeClock) -> None:
    p = pacer(clock)
    secondary = limited(403, "You have exceeded a secondary rate limit")
    first = await send(p, response=secondary)
    assert first.lane.blocked_for("jit", clock.now) == 60
    second = await send(p, response=secondary)
    assert second.sent_at == first.sent_at + 60
    assert second.lane.blocked_for("jit", clock.now) == 120
    await send(p)
    third = await send(p, response=secondary)  # a success in between starts over at a minute
    assert third.lane.blocked_for("jit", clock.now) == 60


async def test_a_403_without_a_rate_limit_is_no_signal(clock: FakeClock) -> None:
    p = pacer(clock)
    ticket = await send(p, response=limited(403, "Resource not accessible by integration"))
    assert ticket.lane.blocked_for("jit", clock.now) == 0
    assert p.snapshot()[0]["classes"]["jit"]["refused"] == 0


async def test_primary_limit_spent_blocks_until_the_reset(clock: FakeClock) -> None:
    p = pacer(clock)
    reset = str(int(clock.now) + 900)
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Limit": "5000"}
    spent = await send(
        p, "rest", httpx.Response(201, headers={**headers, "X-RateLimit-Reset": reset})
    )
    assert spent.lane.blocked_for("rest", clock.now) == 900  # no need to be refused first
    snapshot = p.snapshot()[0]["classes"]["rest"]
    assert (snapshot["rate_limit_remaining"], snapshot["rate_limit_limit"]) == (0, 5000)
    assert snapshot["refused"] == 0
    after = await send(p, "rest")
    assert after.sent_at == spent.sent_at + 900


async def test_adaptive_concurrency_halves_then_recovers(clock: FakeClock) -> None:
    p = pacer(clock, max_concurrency=8)
    lane = p.lanes[0]
    held = [await p.acquire("jit") for _ in range(8)]
    for ticket in held:
        lane.send(ticket)
    waiting = asyncio.ensure_future(p.acquire("jit"))
    await asyncio.sleep(0)
    assert not waiting.done()  # the ninth waits for a slot
    lane.finish(held[0], limited(429, **{"Retry-After": "5"}), clock.now)
    assert lane.concurrency == 4
    for ticket in held[1:]:  # in flight before the signal: refused too, but halve only once
        lane.finish(ticket, limited(429, **{"Retry-After": "5"}), clock.now)
    assert lane.concurrency == 4
    ninth = await waiting
    assert ninth.lane is lane and clock.now >= held[0].sent_at + 5  # type: ignore[operator]
    lane.send(ninth)
    lane.finish(ninth, OK, clock.now)
    for _ in range(8):
        await send(p)
    assert 5.5 < lane.concurrency < 6.5  # one more per window of successes (4, then 5)
    for _ in range(40):
        await send(p)
    assert lane.concurrency == 8  # back to the cap


async def test_ceiling_is_learned_from_the_first_signal(clock: FakeClock) -> None:
    p = pacer(clock, window_seconds=10, window_margin=0, learn_min_requests=4)
    lane = p.lanes[0]
    sent = [await p.acquire("jit") for _ in range(5)]
    for ticket in sent:
        lane.send(ticket)
    # the refusal comes back first: the four before it are still on their way
    lane.finish(sent[4], limited(429, **{"Retry-After": "10"}), clock.now)
    assert p.snapshot()[0]["classes"]["jit"]["ceiling"] is None
    for ticket in sent[:4]:
        lane.finish(ticket, OK, clock.now)
    later = [(await send(p)).sent_at for _ in range(8)]
    jit = p.snapshot()[0]["classes"]["jit"]
    assert (jit["ceiling"], jit["ceiling_learned"]) == (4, True)  # learned at the block's end
    # after the block, four per window: the server's budget, without a second refusal
    refused_at = sent[4].sent_at
    assert later[:4] == [refused_at + 10] * 4
    assert later[4:] == [refused_at + 20] * 4
    assert p.snapshot()[0]["classes"]["jit"]["refused_after_signal"] == 0
    clock.now += 3600  # learned ceilings are forgotten: GitHub may have changed its limits
    assert p.snapshot()[0]["classes"]["jit"]["ceiling"] is None


async def test_too_few_requests_teach_nothing(clock: FakeClock) -> None:
    p = pacer(clock)  # learns from 10 requests on
    for _ in range(3):
        await send(p)
    await send(p, response=limited(429, **{"Retry-After": "1"}))
    assert p.snapshot()[0]["classes"]["jit"]["ceiling"] is None


async def test_a_refusal_after_the_first_signal_is_counted(clock: FakeClock) -> None:
    p = pacer(clock, learn=False)
    await send(p, response=limited(429, **{"Retry-After": "1"}))
    await send(p, response=limited(429, **{"Retry-After": "1"}))
    jit = p.snapshot()[0]["classes"]["jit"]
    assert (jit["refused"], jit["refused_after_signal"]) == (2, 1)


async def test_a_block_beyond_the_longest_wait_fails_fast(clock: FakeClock) -> None:
    p = Pacer(["a"], PacingSettings(), clock=clock, sleep=clock.sleep, max_wait=120)
    await send(p, response=limited(429, **{"Retry-After": "900"}))
    with pytest.raises(RateLimitedError, match="rate limited for 900 s") as info:
        await p.acquire("jit")
    assert info.value.retry_after == 900
    assert clock.sleeps == []


async def test_pacing_off_waits_for_nothing_but_counts(clock: FakeClock) -> None:
    p = pacer(clock, enabled=False, ceilings={"jit": 1})
    for _ in range(3):
        await send(p, response=limited(429, **{"Retry-After": "30"}))
    assert clock.sleeps == []
    jit = p.snapshot()[0]["classes"]["jit"]
    assert (jit["requests"], jit["refused"], jit["refused_after_signal"]) == (3, 3, 0)
    # sent at the same instant as the first signal: none of them was sent after it


async def test_requests_go_to_the_credential_with_the_most_budget(clock: FakeClock) -> None:
    p = pacer(clock, ("a", "b"), ceilings={"jit": 3}, window_seconds=10, window_margin=0)
    first = await send(p)
    assert first.lane is p.lanes[0]  # a tie goes to the first
    assert [(await send(p)).lane.label for _ in range(5)] == ["b", "a", "b", "a", "b"]
    # both spent: the next waits for the window, not for a block
    late = await send(p)
    assert late.sent_at == first.sent_at + 10


async def test_without_ceilings_requests_spread_evenly(clock: FakeClock) -> None:
    p = pacer(clock, ("a", "b", "c"))
    tickets = [await p.acquire("jit") for _ in range(9)]
    assert sorted(t.lane.label for t in tickets) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3


async def test_a_limited_credential_is_set_aside(clock: FakeClock) -> None:
    p = pacer(clock, ("a", "b"))
    a, _ = p.lanes
    await send(p, response=limited(429, **{"Retry-After": "60"}), lane=a)
    picks = [(await send(p)).lane.label for _ in range(4)]
    assert picks == ["b"] * 4 and clock.sleeps == []  # nothing waits while b has room
    a.reject(clock.now, 300)  # GitHub refused the credential itself
    assert [lane.label for lane in p.usable()] == ["b"]
    clock.now += 301
    assert [lane.label for lane in p.usable()] == ["a", "b"]


async def test_the_queue_is_outside_the_concurrency_cap(clock: FakeClock) -> None:
    p = pacer(clock, max_concurrency=1)
    lane = p.lanes[0]
    jit = await p.acquire("jit")
    polls = [await p.acquire("queue") for _ in range(5)]  # long polls never wait for a slot
    rest = await p.acquire("rest")  # nor does the auth chain that the JIT call may need
    assert lane.in_flight == 1 and len(polls) == 5 and rest.cls == "rest"
    lane.cancel(jit)
    assert lane.in_flight == 0
