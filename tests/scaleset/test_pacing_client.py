"""The client's pacing end to end, on an injected clock: a scripted GitHub (in process) records
when each request arrives, so "nothing was sent during a block" is checked, not assumed."""

from __future__ import annotations

import time

import pytest

from gha_scalesets.scaleset import Client, PatCredentials, RetryPolicy
from gha_scalesets.scaleset.auth import TokenCache
from gha_scalesets.scaleset.pacing import PacingSettings
from tests.scaleset.scripted_github import BASE, ScriptedGitHub, refuse
from tests.support.clocks import FakeClock

NAMES = [f"r-{i}" for i in range(40)]


@pytest.fixture
def clock() -> FakeClock:
    fake = FakeClock(1_000_000.0)
    fake.now = float(int(time.time()))  # tokens carry real-looking expiry dates
    return fake


def client(
    github: ScriptedGitHub,
    clock: FakeClock,
    pats: tuple[str, ...],
    attempts: int = 5,
    **pacing: object,
) -> Client:
    return Client(
        f"{BASE}/acme",
        [PatCredentials(pat, name=pat) for pat in pats],
        http=github.http(),
        retry=RetryPolicy(max_attempts=attempts, seed=1, clock=clock, sleep=clock.sleep),
        token_cache=TokenCache(clock=clock),
        pacing=PacingSettings(**pacing),  # type: ignore[arg-type]
    )


def nth_jit_refused(n: int, pat: str | None = None, **headers: str):  # type: ignore[no-untyped-def]
    count = 0

    def script(kind: str, credential: str, now: float):  # type: ignore[no-untyped-def]
        nonlocal count
        if kind == "jit" and pat in (None, credential):
            count += 1
            if count == n:
                return refuse(429, **headers)
        return None

    return script


@pytest.mark.parametrize("paced", [True, False], ids=["paced", "unpaced"])
async def test_a_block_holds_every_later_request(clock: FakeClock, paced: bool) -> None:
    github = ScriptedGitHub(clock, ("p1",), nth_jit_refused(1, **{"Retry-After": "30"}))
    async with client(github, clock, ("p1",), attempts=1, enabled=paced) as c:
        [refused] = await c.generate_jit_configs(1, ["r-0"])  # one attempt: fails at once
        later = await c.generate_jit_configs(1, NAMES[1:21], concurrency=20)
    assert not refused.ok and all(r.ok for r in later)
    knocked = github.during_block(30)
    if paced:  # 20 other tasks, none sent anything before the block was over
        assert knocked == []
        assert github.arrivals("jit")[1:] == [github.arrivals("jit")[0] + 30] * 20
    else:  # what pacing prevents: each one knocks during the block (and restarts it)
        assert len(knocked) == 20


async def test_requests_in_flight_at_the_signal_are_not_held_against_it(clock: FakeClock) -> None:
    github = ScriptedGitHub(clock, ("p1",), nth_jit_refused(10, **{"Retry-After": "30"}))
    async with client(github, clock, ("p1",)) as c:
        results = await c.generate_jit_configs(1, NAMES, concurrency=20)
        snapshot = c.pacing_snapshot()[0]["classes"]["jit"]
    assert all(r.ok for r in results)  # the refused one went again after the block
    assert github.during_block(30) == []
    assert (snapshot["refused"], snapshot["refused_after_signal"]) == (1, 0)


async def test_a_configured_ceiling_is_never_exceeded(clock: FakeClock) -> None:
    github = ScriptedGitHub(clock, ("p1",))
    async with client(github, clock, ("p1",), ceilings={"jit": 10}, window_seconds=60) as c:
        results = await c.generate_jit_configs(1, NAMES[:35], concurrency=20)
    assert all(r.ok for r in results)
    arrivals = github.arrivals("jit")
    assert max(sum(1 for t in arrivals if s <= t < s + 60) for s in arrivals) == 10
    assert arrivals[-1] - arrivals[0] == pytest.approx(3 * 60 * 1.02)  # 4 windows' worth


async def test_a_limited_credential_hands_its_requests_to_the_other(clock: FakeClock) -> None:
    script = nth_jit_refused(3, "p1", **{"Retry-After": "60"})
    github = ScriptedGitHub(clock, ("p1", "p2"), script)
    async with client(github, clock, ("p1", "p2")) as c:
        results = await c.generate_jit_configs(1, NAMES[:20], concurrency=4)
        p1, p2 = c.pacing_snapshot()
    assert all(r.ok for r in results)
    assert clock.sleeps == []  # nobody waited: p2 had budget left
    refused_at = next(s.at for s in github.seen if s.status == 429)
    assert github.arrivals("jit", "p1") == [refused_at] * 3  # then nothing more on p1
    assert len(github.arrivals("jit", "p2")) == 18
    assert p1["classes"]["jit"]["blocked"] and not p2["classes"]["jit"]["blocked"]


async def test_a_revoked_credential_moves_its_work_and_sessions(clock: FakeClock) -> None:
    github = ScriptedGitHub(clock, ("p1", "p2"))
    async with client(github, clock, ("p1", "p2")) as c:
        session = await c.create_message_session(1, "owner")
        home = session._credential
        other = "p1" if home == "p2" else "p2"
        assert github.arrivals("session", home)  # sessions go to their scale set's home
        github.revoked.add(home)
        results = await c.generate_jit_configs(1, NAMES[:10], concurrency=4)
        await c.refresh_message_session(session)
        await c.delete_message_session(session)
        usable = {lane["credential"]: lane["usable"] for lane in c.pacing_snapshot()}
    assert all(r.ok for r in results)
    assert session._credential == other  # the session moved with the work
    assert github.arrivals("refresh", other) and github.arrivals("delete", other)
    assert usable == {home: False, other: True}
    assert len(github.arrivals("jit", other)) == 10


async def test_sessions_stay_on_their_credential(clock: FakeClock) -> None:
    github = ScriptedGitHub(clock, ("p1", "p2"))
    async with client(github, clock, ("p1", "p2")) as c:
        sessions = [await c.create_message_session(ss, "owner") for ss in (1, 2, 3, 4)]
        for session in sessions:
            await c.refresh_message_session(session)
    homes = [s._credential for s in sessions]
    assert homes == ["p2", "p1", "p2", "p1"]  # spread, and stable by scale set
    for session in sessions:
        assert session._credential in {s.credential for s in github.seen if s.kind == "refresh"}
    refreshes = [s.credential for s in github.seen if s.kind == "refresh"]
    assert refreshes == homes


def test_distinct_credentials_are_required() -> None:
    with pytest.raises(ValueError, match="given twice"):
        Client(f"{BASE}/acme", [PatCredentials("p1"), PatCredentials("p1")])
    with pytest.raises(ValueError, match="no credentials"):
        Client(f"{BASE}/acme", [])
