"""Idle: many scale sets with no jobs, ours (one listener) vs. upstream-equivalent (one each).

Time is scaled, not waited for. The simulator holds long polls for ``hold`` seconds instead of
the service's 50 s; one simulated hour is 3600 / 50 = 72 poll cycles. Measured:

- steady state: over the window in which the scale sets are polled ``cycles`` times each after
  startup (timed by the simulator's own clock, from one counted poll to another), GitHub
  requests per scale set per poll cycle = requests / polls in the window (both modes only
  long-poll while idle: 1.0 expected), and polls per scale set
  per hold = polls / scale sets / (window / hold). A scale set polled less often than its hold
  makes no requests it could be charged for, so that second figure is the check: below
  :data:`MIN_POLLS_PER_HOLD` the run fails (:class:`PollingStalled`). Time scaling magnifies
  the few milliseconds between a poll's end and the next one (a few % of a 0.2 s hold, 0.01 %
  of GitHub's 50 s), hence the margin; a stalled listener polls several times less often;
- the refresh bill: the requests of one auth chain run (measured at startup, cold caches:
  installation token, registration token, runner-registration with a GitHub App) and the
  requests of one message-queue token refresh (measured by expiring one session's token
  through the simulator: the 401'd GET plus the session PATCH).

Requests per scale set per simulated hour =
``per_cycle * 72 + mq_refresh * (3600 / mq_token_ttl) + chain * chains_per_hour / scale_sets``,
where ours runs one chain per org per admin-token lifetime (one shared token cache) and
upstream one per listener (ARC runs a listener per scale set, each re-running the full chain).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from benchmarks.harness import (
    APP_CLIENT_ID,
    APP_INSTALLATION_ID,
    ORG,
    PAT,
    auth_requests,
    requests_between,
    total,
)
from benchmarks.upstream import UpstreamListener
from gha_scalesets.listener.app import Listener
from gha_scalesets.listener.config import ListenerSettings
from gha_scalesets.scaleset import AppCredentials, Client, PatCredentials
from gha_scalesets.scaleset.auth import TokenCache
from tests.support.keys import rsa_pem
from tests.support.noop_runtime import NoopRuntime
from tests.support.processes import SimulatorProcess

SERVICE_HOLD_SECONDS = 50.0
HOUR = 3600.0
CYCLES_PER_HOUR = HOUR / SERVICE_HOLD_SECONDS
GET_MESSAGE = "GET /message"
CREATE_SESSION = "POST /_apis/runtime/runnerscalesets/{id}/sessions"
_TIMEOUT = 300.0
MIN_POLLS_PER_HOLD = 0.75


class PollingStalled(RuntimeError):
    """The scale sets were polled less often than once per hold: the listener fell behind."""


async def _stats(sim: SimulatorProcess) -> dict[str, Any]:
    return await asyncio.to_thread(sim.stats)


async def _create_scale_sets(sim: SimulatorProcess, prefix: str, count: int) -> list[int]:
    async with Client(sim.config_url(ORG), PatCredentials(PAT), token_cache=TokenCache()) as c:
        group = await c.get_runner_group_by_name("Default")
        return [
            (await c.create_scale_set(name=f"{prefix}-{i}", runner_group_id=group.id)).id
            for i in range(count)
        ]


async def _polls_reach(sim: SimulatorProcess, target: int, sessions: int = 0) -> dict[str, Any]:
    """Stats once ``target`` polls (and at least ``sessions`` session creations) were counted."""
    deadline = time.monotonic() + _TIMEOUT
    while True:
        stats = await _stats(sim)
        requests = stats["requests"]
        if requests.get(GET_MESSAGE, 0) >= target and requests.get(CREATE_SESSION, 0) >= sessions:
            return stats
        if time.monotonic() > deadline:
            raise TimeoutError("idle: the listeners stopped polling")
        await asyncio.sleep(0.02)


async def _cycles(
    sim: SimulatorProcess, before: dict[str, Any], sets: int, cycles: int, hold: float
) -> tuple[float, dict[str, Any]]:
    """The seconds (the simulator's clock) until every scale set was polled ``cycles`` more
    times, and the stats then; a listener too slow for that is stopped at the stall bound.

    The window runs from one counted poll to another, not over fixed wall-clock seconds:
    scale sets polled in lockstep (one listener each) finish their polls in waves, and a fixed
    window catches one wave more or less depending on where it starts."""
    target = before["requests"].get(GET_MESSAGE, 0) + cycles * sets
    try:
        async with asyncio.timeout(cycles * hold / MIN_POLLS_PER_HOLD + hold):
            after = await _polls_reach(sim, target)
    except TimeoutError:  # too slow: measured as far as it got
        after = await _stats(sim)
    return after["monotonic"] - before["monotonic"], after


async def _measure(
    sim: SimulatorProcess, sets: int, cycles: int, hold: float, started: dict[str, Any], who: str
) -> Any:
    """Startup requests, then requests per scale set per hold over ``cycles`` polls of each
    scale set, then the cost of one message-queue token refresh."""
    base = started["requests"]
    # Every scale set has opened its session (a slow starter's startup requests must not land
    # in the steady window) and, on average, is in its second poll.
    settled = await _polls_reach(
        sim, base.get(GET_MESSAGE, 0) + 2 * sets, base.get(CREATE_SESSION, 0) + sets
    )
    startup = requests_between(started, settled)
    elapsed, ended = await _cycles(sim, settled, sets, cycles, hold)
    steady = requests_between(settled, ended)
    polled = steady.get(GET_MESSAGE, 0)
    polls = polled / (sets * elapsed / hold)  # 1.0: every scale set polled once per hold
    if polls < MIN_POLLS_PER_HOLD:
        raise PollingStalled(
            f"idle ({who}): {sets} scale sets were polled every {hold / max(polls, 1e-9):.2f} s on "
            f"average, not every {hold:g} s (the hold): the listener cannot keep them polled"
        )
    await asyncio.to_thread(sim.set_faults, mq_unauthorized_once=True)
    mark = ended["requests"].get(GET_MESSAGE, 0)
    refreshed = await _polls_reach(sim, mark + 2 * sets)
    await asyncio.to_thread(sim.clear_faults)
    refresh = requests_between(ended, refreshed)
    # Everything beyond the plain polls of the window is the one refresh's bill.
    mq_refresh = total(refresh) - (refreshed["requests"][GET_MESSAGE] - mark) + 1
    return startup, total(steady) / max(polled, 1), polls, mq_refresh


def _hourly(
    per_cycle: float, mq_refresh: int, chain: int, chains_per_hour: float, sets: int, ttl: float
) -> float:
    return per_cycle * CYCLES_PER_HOUR + mq_refresh * HOUR / ttl + chain * chains_per_hour / sets


async def run_ours(
    sim: SimulatorProcess, sets: int, cycles: int, hold: float, credentials: AppCredentials
) -> dict[str, Any]:
    ids = await _create_scale_sets(sim, "idle-ours", sets)
    started = await _stats(sim)
    settings = ListenerSettings(
        github_config_url=sim.config_url(ORG),
        credentials={"app": _app_config(credentials)},
        scale_sets=[{"scale_set_id": i, "max_runners": 10} for i in ids],
        metrics_port=None,
        owner_name="bench-idle-ours",
        log_level="warning",
        capacity={"poll_stagger_seconds": hold},  # polls spread over the (scaled) hold
    )
    listener = Listener(settings, runtime=NoopRuntime(run_jobs=False))
    stop = asyncio.Event()
    await listener.start()
    serving = asyncio.create_task(listener.run_until(stop))
    try:
        measured = await _measure(sim, sets, cycles, hold, started, "ours")
    finally:
        stop.set()
        await serving
        chain_runs = listener.client.auth_chain_runs if listener.client else 0
        await listener.stop()
    return _result(*measured, sets, chain_runs, chains_per_hour=1.0)


def _app_config(credentials: AppCredentials) -> dict[str, Any]:
    return {
        "client_id": credentials.client_id,
        "installation_id": credentials.installation_id,
        "private_key": credentials.private_key_pem.get_secret_value(),
    }


async def run_upstream(
    sim: SimulatorProcess, sets: int, cycles: int, hold: float, credentials: AppCredentials
) -> dict[str, Any]:
    ids = await _create_scale_sets(sim, "idle-upstream", sets)
    started = await _stats(sim)
    listeners = [
        UpstreamListener(
            sim.config_url(ORG),
            credentials,
            scale_set_id=ss_id,
            scale_set_name=f"idle-upstream-{n}",
            max_runners=10,
            runtime=NoopRuntime(run_jobs=False),
            owner=f"upstream-{n}",
        )
        for n, ss_id in enumerate(ids)
    ]
    await asyncio.gather(*(u.start() for u in listeners))
    loops = [asyncio.create_task(u.run()) for u in listeners]
    try:
        measured = await _measure(sim, sets, cycles, hold, started, "upstream-equivalent")
    finally:
        for loop in loops:
            loop.cancel()
        for loop in loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        chain_runs = sum(u.client.auth_chain_runs for u in listeners)
        await asyncio.gather(*(u.close() for u in listeners))
    return _result(*measured, sets, chain_runs, chains_per_hour=float(sets))


def _result(
    startup: dict[str, int],
    per_cycle: float,
    polls_per_hold: float,
    mq_refresh: int,
    sets: int,
    chain_runs: int,
    *,
    chains_per_hour: float,
) -> dict[str, Any]:
    chain = auth_requests(startup) // max(chain_runs, 1)
    return {
        "requests_per_scale_set_per_cycle": round(per_cycle, 3),
        "polls_per_scale_set_per_hold": round(polls_per_hold, 3),
        "requests_per_scale_set_hour": round(
            _hourly(per_cycle, mq_refresh, chain, chains_per_hour, sets, HOUR), 2
        ),
        "auth_chain_runs_per_hour": chains_per_hour,
        "auth_chain_runs_at_startup": chain_runs,
        "requests_per_auth_chain": chain,
        "requests_per_mq_token_refresh": mq_refresh,
        "startup_requests": startup,
    }


async def run(
    *, scale_sets: int = 100, cycles: int = 3, hold_seconds: float = 0.5, seed: int = 1
) -> dict[str, Any]:
    """Both modes against one simulator (GitHub App credentials, the full auth chain)."""
    pem = rsa_pem()
    credentials = AppCredentials(APP_CLIENT_ID, APP_INSTALLATION_ID, pem)
    with SimulatorProcess(
        PAT,
        long_poll_seconds=hold_seconds,
        seed=seed,
        app=(APP_CLIENT_ID, APP_INSTALLATION_ID, pem),
    ) as sim:
        ours = await run_ours(sim, scale_sets, cycles, hold_seconds, credentials)
        upstream = await run_upstream(sim, scale_sets, cycles, hold_seconds, credentials)
    return {
        "parameters": {
            "scale_sets": scale_sets,
            "cycles_measured": cycles,
            "hold_seconds": hold_seconds,
            "service_hold_seconds": SERVICE_HOLD_SECONDS,
            "admin_and_mq_token_ttl_seconds": HOUR,
            "seed": seed,
        },
        "ours": ours,
        "upstream_equivalent": upstream,
        "reduction_percent": round(
            100
            * (1 - ours["requests_per_scale_set_hour"] / upstream["requests_per_scale_set_hour"]),
            1,
        ),
    }
