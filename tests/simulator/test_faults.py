"""Fault injection, chaos knobs and burst handling of the simulator."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT
from tests.simulator.raw import SETS, Admin, connect, registration_path

LIST_SETS = "GET /_apis/runtime/runnerscalesets"


@pytest.fixture
def admin(http: httpx.Client, sim: SimulatorServer) -> Admin:
    return connect(http, sim)


def test_latency_applies_to_listed_routes(sim: SimulatorServer, admin: Admin) -> None:
    sim.set_faults(latency_ms=300, routes=[LIST_SETS])
    started = time.monotonic()
    assert admin.call("GET", SETS).status_code == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(("status", "retry_after"), [(503, "2"), (429, "1"), (500, None)])
def test_injected_errors_and_retry_after(
    sim: SimulatorServer, admin: Admin, status: int, retry_after: str | None
) -> None:
    knobs = {"error_rate": 1.0, "error_status": status, "routes": [LIST_SETS]}
    if status == 503:
        knobs["retry_after_seconds"] = 2
    sim.set_faults(**knobs)
    response = admin.call("GET", SETS)
    assert response.status_code == status
    assert response.headers.get("Retry-After") == retry_after
    assert admin.call("GET", f"{SETS}/1").status_code == 404  # an unlisted route is untouched
    assert sim.stats()["requests"][LIST_SETS] == 1  # faulted requests still count


def test_dropped_connection_is_a_transport_error(sim: SimulatorServer, admin: Admin) -> None:
    sim.set_faults(drop_rate=1.0, routes=[LIST_SETS])
    with pytest.raises(httpx.TransportError):
        admin.call("GET", SETS)
    sim.clear_faults()
    assert admin.call("GET", SETS).status_code == 200


def test_primary_rate_limit(http: httpx.Client, sim: SimulatorServer) -> None:
    route = f"POST /api/v3/{registration_path('{org}')}"
    sim.set_faults(rate_limit_per_hour=3, routes=[route])

    def mint() -> httpx.Response:
        url = f"{sim.api_url}/{registration_path('acme')}"
        return http.post(url, headers={"Authorization": f"Bearer {SIM_PAT}"})

    remaining = [mint().headers["X-RateLimit-Remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    limited = mint()
    assert limited.status_code == 403
    assert limited.headers["X-RateLimit-Limit"] == "3"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert int(limited.headers["X-RateLimit-Reset"]) > sim.now()
    assert "rate limit" in limited.json()["message"]
    sim.advance_clock(3600)
    assert mint().status_code == 201


def test_faults_are_seeded_and_reproducible(sim: SimulatorServer, admin: Admin) -> None:
    def run() -> list[int]:
        sim.set_faults(error_rate=0.5, routes=[LIST_SETS])
        return [admin.call("GET", SETS).status_code for _ in range(20)]

    first, second = run(), run()
    assert first == second
    assert set(first) == {200, 503}


def test_fault_settings_are_validated(http: httpx.Client, sim: SimulatorServer) -> None:
    for bad in ({"routes": ["GET /nope"]}, {"error_status": 404}, {"error_rate": 2}, {"x": 1}):
        response = http.post(f"{sim.url}/_sim/faults", json=bad)
        assert response.status_code == 400, bad
    routes = http.get(f"{sim.url}/_sim/routes").json()["github"]
    assert "GET /message" in routes and LIST_SETS in routes


def test_empty_body_on_message_get(sim: SimulatorServer, admin: Admin) -> None:
    ss = admin.create_scale_set("chaos")
    listener = admin.listener(ss["id"])
    sim.set_faults(empty_body_rate=1.0)
    response = listener.get()
    assert response.status_code == 200
    assert response.content == b""


def test_empty_queue_url_once(sim: SimulatorServer, admin: Admin) -> None:
    ss = admin.create_scale_set("chaos")
    sim.set_faults(empty_queue_url_once=True)
    first = admin.create_session(ss["id"]).json()
    assert first["messageQueueUrl"] == ""
    path = f"{SETS}/{ss['id']}/sessions/{first['sessionId']}"
    assert admin.call("DELETE", path).status_code == 204
    assert admin.create_session(ss["id"]).json()["messageQueueUrl"].startswith(sim.url)


def test_mq_unauthorized_once(sim: SimulatorServer, admin: Admin) -> None:
    ss = admin.create_scale_set("chaos")
    listener = admin.listener(ss["id"])
    sim.set_faults(mq_unauthorized_once=True)
    assert listener.get().status_code == 401
    assert listener.get().status_code == 202


def test_scale_set_deleted_under_a_connected_listener(admin: Admin) -> None:
    ss = admin.create_scale_set("vanishing")
    listener = admin.listener(ss["id"])
    result: list[httpx.Response] = []
    poll = threading.Thread(target=lambda: result.append(listener.get()))
    poll.start()
    deleted = admin.call("DELETE", f"{SETS}/{ss['id']}")
    poll.join(timeout=10)
    assert deleted.status_code == 204
    assert "RunnerScaleSetNotFoundException" in result[0].json()["typeName"]
    later = listener.get()
    assert later.status_code == 404
    assert "RunnerScaleSetNotFoundException" in later.json()["typeName"]
    refresh = admin.call("PATCH", f"{SETS}/{ss['id']}/sessions/{listener.session['sessionId']}")
    assert refresh.status_code == 404
    assert "RunnerScaleSetNotFoundException" in refresh.json()["typeName"]


async def _raw_get(url: httpx.URL, token: str) -> bytes:
    """One request on its own connection (httpx's single pool, not the server, is the
    bottleneck at this concurrency)."""
    reader, writer = await asyncio.open_connection(url.host, url.port)
    target = url.raw_path.decode()
    writer.write(
        f"GET {target} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n"
        f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n".encode()
    )
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    return response.split(b"\r\n", 1)[0]


async def test_burst_of_500_concurrent_requests(sim: SimulatorServer, admin: Admin) -> None:
    ss = admin.create_scale_set("burst")
    url = httpx.URL(f"{admin.base}{SETS}/{ss['id']}", params={"api-version": "6.0-preview"})
    status_lines = await asyncio.gather(*(_raw_get(url, admin.token) for _ in range(500)))
    assert set(status_lines) == {b"HTTP/1.1 200 OK"}
    assert sim.stats()["requests"]["GET /_apis/runtime/runnerscalesets/{id}"] == 500


def test_responses_carry_request_ids(sim) -> None:
    """REST answers carry X-GitHub-Request-Id and Actions-service answers ActivityId, as GitHub."""
    rest = httpx.post(
        f"{sim.url}/api/v3/orgs/acme/actions/runners/registration-token",
        headers={"Authorization": "Bearer wrong"},
    )
    assert rest.status_code == 401
    assert rest.headers["X-GitHub-Request-Id"].startswith("SIM0:")
    admin = httpx.get(f"{sim.url}/_services/pipelines/nope/_apis/runtime/runnerscalesets/1")
    assert "ActivityId" in admin.headers
