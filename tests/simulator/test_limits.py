"""The simulator's rate limits: each budget, blocks and their escalation, per credential.

Raw HTTP against the session simulator; windows and blocks run on its clock, which the tests
advance instead of sleeping.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from gha_scalesets.simulator.limits import app_credential, pat_credential, route_class
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_APP_CLIENT_ID, SIM_PAT
from tests.simulator.raw import SETS, Admin, app_jwt, connect, register, registration_token

AppCreds = tuple[str, int, str]
PAT_ID = pat_credential(SIM_PAT)
LIST_SETS = "GET /_apis/runtime/runnerscalesets"


def _limit(sim: SimulatorServer, cls: str, **rule: Any) -> None:
    sim.set_limits(classes={cls: rule})


@pytest.fixture
def admin(http: httpx.Client, sim: SimulatorServer) -> Admin:
    return connect(http, sim)


@pytest.fixture
def scale_set(admin: Admin) -> int:
    return admin.create_scale_set("limited")["id"]


@pytest.fixture
def app_admin(http: httpx.Client, sim: SimulatorServer, sim_app_credentials: AppCreds) -> Admin:
    """The App's auth chain: JWT -> installation token -> registration token -> admin token."""
    client_id, installation_id, pem = sim_app_credentials
    minted = http.post(
        f"{sim.api_url}/app/installations/{installation_id}/access_tokens",
        headers={"Authorization": f"Bearer {app_jwt(client_id, pem, sim.now())}"},
    )
    token = registration_token(http, sim, "acme", credential=minted.json()["token"])
    registered = register(http, sim, token, "acme").json()
    return Admin(http, registered["url"], registered["token"])


def test_route_classes() -> None:
    assert route_class("POST /api/v3/actions/runner-registration") == "rest"
    assert route_class("POST /_apis/runtime/runnerscalesets/{id}/generatejitconfig") == "jit"
    assert route_class("GET /message") == "queue"
    assert route_class("POST /_apis/runtime/runnerscalesets/{id}/acquirejobs") == "queue"
    assert route_class("PATCH /_apis/runtime/runnerscalesets/{id}/sessions/{session_id}") == (
        "admin"
    )


def test_off_by_default(sim: SimulatorServer, admin: Admin, scale_set: int) -> None:
    for index in range(20):
        response = admin.jit(scale_set, f"r-{index}")
        assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response.headers
    assert sim.limit_stats() == {}


def test_points_per_window_then_a_block(sim: SimulatorServer, admin: Admin, scale_set: int) -> None:
    _limit(sim, "jit", points_per_window=15, window_seconds=60, block_seconds=60)  # 3 POSTs
    assert [admin.jit(scale_set, f"r-{i}").status_code for i in range(3)] == [200] * 3
    refused = admin.jit(scale_set, "r-3")
    assert refused.status_code == 403
    assert refused.headers["Retry-After"] == "60"
    assert "secondary rate limit" in refused.json()["message"]
    assert admin.call("GET", SETS).status_code == 200  # another class is not blocked
    sim.advance_clock(61)  # the block is over and the window has moved on
    assert admin.jit(scale_set, "r-4").status_code == 200
    jit = sim.limit_stats()[PAT_ID]["jit"]
    assert (jit["requests"], jit["refused"], jit["refused_in_block"]) == (4, 1, 0)
    assert 60 <= jit["blocked_seconds"] < 62


def test_points_cost_by_method(sim: SimulatorServer, admin: Admin, scale_set: int) -> None:
    _limit(sim, "admin", points_per_window=7)  # one POST (5) and two GETs (1 each)
    assert admin.call("GET", SETS).status_code == 200
    assert admin.call("GET", SETS).status_code == 200
    assert admin.create_session(scale_set).status_code == 200
    assert admin.call("GET", SETS).status_code == 403


def test_requests_during_a_block_restart_it(
    sim: SimulatorServer, admin: Admin, scale_set: int
) -> None:
    _limit(sim, "jit", points_per_window=5, block_seconds=60, status=429)
    assert admin.jit(scale_set, "r-0").status_code == 200
    assert admin.jit(scale_set, "r-1").status_code == 429
    sim.advance_clock(40)
    knocked = admin.jit(scale_set, "r-2")  # 20 s before the end: the block starts over
    assert knocked.status_code == 429
    assert knocked.headers["Retry-After"] == "60"
    sim.advance_clock(30)  # past the first block's end, inside the restarted one
    assert admin.jit(scale_set, "r-3").status_code == 429
    sim.advance_clock(61)
    assert admin.jit(scale_set, "r-4").status_code == 200
    jit = sim.limit_stats()[PAT_ID]["jit"]
    assert (jit["refused"], jit["refused_in_block"]) == (3, 2)
    assert 130 <= jit["blocked_seconds"] < 132  # 40 + 30 + 60: one long block


def test_budgets_are_per_credential(
    sim: SimulatorServer, admin: Admin, app_admin: Admin, scale_set: int
) -> None:
    _limit(sim, "jit", points_per_window=5)
    assert admin.jit(scale_set, "pat-0").status_code == 200
    assert admin.jit(scale_set, "pat-1").status_code == 403
    assert app_admin.jit(scale_set, "app-0").status_code == 200  # the App has its own budget
    stats = sim.limit_stats()
    app_id = app_credential(SIM_APP_CLIENT_ID)
    assert stats[PAT_ID]["jit"]["refused"] == 1
    assert stats[app_id]["jit"] == {**stats[app_id]["jit"], "requests": 1, "refused": 0}


def test_per_credential_overrides(
    sim: SimulatorServer, admin: Admin, app_admin: Admin, scale_set: int
) -> None:
    sim.set_limits(credentials={PAT_ID: {"jit": {"points_per_window": 5}}})
    assert [app_admin.jit(scale_set, f"a-{i}").status_code for i in range(3)] == [200] * 3
    assert admin.jit(scale_set, "p-0").status_code == 200
    assert admin.jit(scale_set, "p-1").status_code == 403


def test_concurrent_requests(sim: SimulatorServer, admin: Admin) -> None:
    _limit(sim, "admin", max_concurrent=1, status=429)
    sim.set_faults(latency_ms=400, routes=[LIST_SETS])
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(admin.call, "GET", SETS)
        while not sim.limit_stats():  # the first request is admitted and held
            pass
        refused = admin.call("GET", SETS)
        assert held.result().status_code == 200
    assert refused.status_code == 429
    assert "concurrent requests" in refused.json()["message"]


def test_content_creation_per_window(sim: SimulatorServer, admin: Admin) -> None:
    _limit(sim, "admin", content_per_window=2, window_seconds=60)
    assert admin.create_scale_set("one")["id"]
    assert admin.create_scale_set("two")["id"]
    refused = admin.call("POST", SETS, json={"name": "three", "RunnerSetting": {}})
    assert refused.status_code == 403
    assert "content creation per window" in refused.json()["message"]


def test_content_creation_per_hour(sim: SimulatorServer, admin: Admin) -> None:
    _limit(sim, "admin", content_per_hour=2, hour_seconds=600, block_seconds=1)
    admin.create_scale_set("one")
    sim.advance_clock(120)  # a per-minute budget would have refilled by now
    admin.create_scale_set("two")
    refused = admin.call("POST", SETS, json={"name": "three", "RunnerSetting": {}})
    assert "content creation per hour" in refused.json()["message"]
    sim.advance_clock(500)  # the first creation left the hour
    assert admin.create_scale_set("four")["id"]


def test_cpu_time(sim: SimulatorServer, admin: Admin) -> None:
    _limit(sim, "admin", cpu_seconds_per_window=0.25)
    sim.set_faults(latency_ms=150, routes=[LIST_SETS])
    assert admin.call("GET", SETS).status_code == 200
    assert admin.call("GET", SETS).status_code == 200  # 0.3 s of service time booked
    refused = admin.call("GET", SETS)
    assert refused.status_code == 403
    assert "CPU time" in refused.json()["message"]


def test_primary_hourly_budget_and_headers(
    http: httpx.Client, sim: SimulatorServer, admin: Admin
) -> None:
    _limit(sim, "rest", requests_per_hour=2)

    def mint() -> httpx.Response:
        return http.post(
            f"{sim.api_url}/orgs/acme/actions/runners/registration-token",
            headers={"Authorization": f"Bearer {SIM_PAT}"},
        )

    assert [mint().headers["X-RateLimit-Remaining"] for _ in range(2)] == ["1", "0"]
    limited = mint()
    assert limited.status_code == 403
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.headers["X-RateLimit-Resource"] == "core"
    assert int(limited.headers["X-RateLimit-Reset"]) > sim.now()
    assert "Retry-After" not in limited.headers
    assert mint().status_code == 403  # the reset is fixed: knocking does not move it
    sim.advance_clock(3600)
    assert mint().status_code == 201
    rest = sim.limit_stats()[PAT_ID]["rest"]
    assert (rest["refused"], rest["refused_in_block"]) == (2, 1)


def test_no_retry_after_when_configured_so(
    sim: SimulatorServer, admin: Admin, scale_set: int
) -> None:
    _limit(sim, "jit", points_per_window=5, retry_after=False)
    admin.jit(scale_set, "r-0")
    refused = admin.jit(scale_set, "r-1")
    assert refused.status_code == 403 and "Retry-After" not in refused.headers


def test_queue_counts_against_the_sessions_credential(
    sim: SimulatorServer, admin: Admin, scale_set: int
) -> None:
    listener = admin.listener(scale_set)
    _limit(sim, "queue", points_per_window=1)
    assert listener.get(capacity=0).status_code == 202
    assert listener.get(capacity=0).status_code == 403
    assert sim.limit_stats()[PAT_ID]["queue"]["refused"] == 1


def test_revoked_credential(http: httpx.Client, sim: SimulatorServer, admin: Admin) -> None:
    scale_set = admin.create_scale_set("revoked")["id"]
    listener = admin.listener(scale_set)
    sim.revoke(PAT_ID)
    assert admin.call("GET", SETS).status_code == 401  # its admin token goes with it
    minted = http.post(
        f"{sim.api_url}/orgs/acme/actions/runners/registration-token",
        headers={"Authorization": f"Bearer {SIM_PAT}"},
    )
    assert minted.status_code == 401
    assert listener.get(capacity=0).status_code == 202  # the session's queue token lives on
    assert sim.stats()["revoked_credentials"] == [PAT_ID]
    with pytest.raises(RuntimeError, match="no credential"):
        sim.revoke("pat:unknown")
    sim.reset()
    assert sim.stats()["revoked_credentials"] == []
