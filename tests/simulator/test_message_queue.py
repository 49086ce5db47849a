"""Message-queue conformance (rows 14-16): long poll, envelopes, acks, redelivery, capacity,
reassignment and the GHES acquire flow."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import pytest

from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_LONG_POLL_SECONDS
from tests.simulator.raw import MQ_ACCEPT, SETS, Admin, Listener, connect, job_messages

ENVELOPE_KEYS = {"messageId", "messageType", "body", "statistics"}


@pytest.fixture
def admin(http: httpx.Client, sim: SimulatorServer) -> Admin:
    return connect(http, sim)


def _listener(admin: Admin, name: str = "mq-set") -> tuple[dict[str, Any], Listener]:
    ss = admin.create_scale_set(name)
    return ss, admin.listener(ss["id"])


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [event["messageType"] for event in events]


def test_row14_idle_poll_is_held_then_202(admin: Admin) -> None:
    _, listener = _listener(admin)
    started = time.monotonic()
    response = listener.get()
    elapsed = time.monotonic() - started
    assert response.status_code == 202
    assert response.content == b""
    assert SIM_LONG_POLL_SECONDS - 0.05 <= elapsed < SIM_LONG_POLL_SECONDS + 2


def test_row14_pending_message_returns_at_once_with_exact_shape(
    sim: SimulatorServer, admin: Admin
) -> None:
    _, listener = _listener(admin)
    listener.get()  # first poll tells the service the capacity; no jobs yet
    job_ids = sim.queue_jobs(["mq-set"], 2, repository="acme/app")
    response = listener.get()
    assert response.status_code == 200
    message = response.json()
    assert set(message) == ENVELOPE_KEYS
    assert message["messageType"] == "RunnerScaleSetJobMessages"
    assert message["statistics"]["totalAssignedJobs"] == 2
    events = job_messages(message)
    assert _types(events) == ["JobAssigned", "JobAssigned"]
    assert [e["runnerRequestId"] for e in events] == job_ids
    first = events[0]
    assert first["ownerName"] == "acme"
    assert first["repositoryName"] == "app"
    assert first["requestLabels"] == ["mq-set"]
    assert first["runnerAssignTime"] == "0001-01-01T00:00:00Z"
    assert first["scaleSetAssignTime"] != "0001-01-01T00:00:00Z"


def test_row14_requires_accept_api_version_and_session_query(admin: Admin) -> None:
    _, listener = _listener(admin)
    auth = {"Authorization": f"Bearer {listener.token}"}
    url = httpx.URL(listener.session["messageQueueUrl"])
    assert listener.client.get(url, headers=auth).status_code == 400
    no_query = url.copy_with(query=None)
    response = listener.client.get(no_query, headers={**auth, "Accept": MQ_ACCEPT})
    assert response.status_code == 400
    assert "sessionId" in response.json()["message"]


def test_row14_at_most_50_job_messages_per_envelope(sim: SimulatorServer, admin: Admin) -> None:
    _, listener = _listener(admin)
    listener.get()
    sim.queue_jobs(["mq-set"], 120)
    sizes, last_id = [], 0
    for _ in range(3):
        last_id, events = listener.next_events(last_id)
        sizes.append(len(events))
    assert sizes == [50, 50, 20]


def test_row14_capacity_header_bounds_assignments(sim: SimulatorServer, admin: Admin) -> None:
    _, listener = _listener(admin)
    sim.queue_jobs(["mq-set"], 12)
    assert sim.stats()["jobs"]["queued"] == 12  # nothing assigned before the first poll
    last_id, events = listener.next_events(capacity=5)
    assert _types(events) == ["JobAssigned"] * 5
    assert sim.stats()["jobs"]["queued"] == 7
    assert listener.get(last_id, capacity=5).status_code == 202
    _, more = listener.next_events(last_id, capacity=12)
    assert len(more) == 7


def test_row14_last_message_id_and_redelivery(sim: SimulatorServer, admin: Admin) -> None:
    ss, listener = _listener(admin)
    listener.get()
    sim.queue_jobs(["mq-set"], 1)
    first = listener.get().json()
    # progress acknowledged by lastMessageId: not delivered again to this poller
    assert listener.get(first["messageId"]).status_code == 202
    # never DELETEd: the next session (starting at 0) receives it again
    path = f"{SETS}/{ss['id']}/sessions/{listener.session['sessionId']}"
    assert admin.call("DELETE", path).status_code == 204
    successor = admin.listener(ss["id"], owner="successor")
    again = successor.get().json()
    assert again["messageId"] == first["messageId"]
    assert again["body"] == first["body"]
    assert successor.delete(again["messageId"]).status_code == 204
    assert successor.get().status_code == 202


def test_queue_token_expires_and_refresh_recovers(sim_factory: Any, http: httpx.Client) -> None:
    sim: SimulatorServer = sim_factory(mq_token_ttl_seconds=60, session_ttl_seconds=3600)
    admin = connect(http, sim)
    ss, listener = _listener(admin)
    sim.advance_clock(61)
    assert listener.get().status_code == 401
    path = f"{SETS}/{ss['id']}/sessions/{listener.session['sessionId']}"
    listener.session = admin.call("PATCH", path).json()
    assert listener.get().status_code == 202


def test_row15_delete_acks_and_needs_a_valid_token(sim: SimulatorServer, admin: Admin) -> None:
    _, listener = _listener(admin)
    listener.get()
    sim.queue_jobs(["mq-set"], 1)
    message = listener.get().json()
    assert listener.delete(message["messageId"], token="forged").status_code == 401
    assert listener.delete(message["messageId"]).status_code == 204
    assert listener.get().status_code == 202


def test_jobs_queue_without_session_and_survive_session_deletion(
    sim: SimulatorServer, admin: Admin
) -> None:
    ss = admin.create_scale_set("late")
    sim.queue_jobs(["late"], 3)
    assert sim.stats()["jobs"]["queued"] == 3
    listener = admin.listener(ss["id"])
    _, events = listener.next_events()
    assert len(events) == 3
    assert sim.stats()["jobs"]["assigned"] == 3


def test_jobs_route_by_labels_and_scope(http: httpx.Client, sim: SimulatorServer) -> None:
    org = connect(http, sim, "acme")
    repo = connect(http, sim, "acme/app")
    org_set = org.create_scale_set("org-set", labels=["org-set", "linux"])
    repo_set = repo.create_scale_set("repo-set")
    org_listener = org.listener(org_set["id"])
    repo_listener = repo.listener(repo_set["id"])
    org_listener.get()
    repo_listener.get()
    sim.queue_jobs(["linux"], 1, repository="acme/other")
    sim.queue_jobs(["repo-set"], 1, repository="acme/app")
    sim.queue_jobs(["repo-set"], 1, repository="acme/other")  # wrong repository: stays queued
    assert len(org_listener.next_events()[1]) == 1
    assert len(repo_listener.next_events()[1]) == 1
    assert sim.stats()["jobs"]["queued"] == 1


def test_unstarted_assignment_is_cancelled_and_requeued_at_most_3_times(
    sim_factory: Any, http: httpx.Client
) -> None:
    sim: SimulatorServer = sim_factory(assign_timeout_seconds=30, session_ttl_seconds=3600)
    admin = connect(http, sim)
    _, listener = _listener(admin)
    listener.get()
    (job_id,) = sim.queue_jobs(["mq-set"], 1)
    last_id, events = listener.next_events()
    assert _types(events) == ["JobAssigned"]
    seen: Counter[str] = Counter()
    for attempt in range(4):
        sim.advance_clock(30 * 2**attempt + 1)  # the timeout doubles per reassignment
        last_id, events = listener.next_events(last_id)
        seen.update(_types(events))
        cancelled = [e for e in events if e["messageType"] == "JobCompleted"]
        assert cancelled[0]["result"] == "canceled"
        assert "runnerId" not in cancelled[0]
        assert all(e["runnerRequestId"] == job_id for e in events)
    assert seen == {"JobCompleted": 4, "JobAssigned": 3}
    jobs = sim.stats()["jobs"]
    assert (jobs["canceled"], jobs["reassigned"], jobs["assigned"]) == (1, 3, 0)


def test_row16_ghes_mode_offers_then_acquires(sim_factory: Any, http: httpx.Client) -> None:
    sim: SimulatorServer = sim_factory(ghes_acquire=True)
    admin = connect(http, sim)
    ss, listener = _listener(admin)
    listener.get()
    job_ids = sim.queue_jobs(["mq-set"], 2)
    response = listener.get()
    message = response.json()
    events = job_messages(message)
    assert _types(events) == ["JobAvailable", "JobAvailable"]
    acquire_url = events[0]["acquireJobUrl"]
    assert acquire_url == f"{admin.base}{SETS}/{ss['id']}/acquirejobs"
    assert message["statistics"]["totalAvailableJobs"] == 2
    assert message["statistics"]["totalAssignedJobs"] == 0
    acquirable = admin.call("GET", f"{SETS}/{ss['id']}/acquirablejobs")
    assert acquirable.status_code == 200
    assert [j["runnerRequestId"] for j in acquirable.json()["value"]] == job_ids

    def acquire(token: str, ids: list[int]) -> httpx.Response:
        return http.post(
            acquire_url,
            params={"api-version": "6.0-preview"},
            headers={"Authorization": f"Bearer {token}"},
            json=ids,
        )

    assert acquire(admin.token, job_ids).status_code == 401  # needs the queue token
    acquired = acquire(listener.token, [*job_ids, 424242])
    assert acquired.status_code == 200
    assert acquired.json() == {"count": 2, "value": job_ids}
    assert acquire(listener.token, job_ids).json() == {"count": 0, "value": []}
    listener.delete(message["messageId"])
    after = listener.get(message["messageId"]).json()
    assert _types(job_messages(after)) == ["JobAssigned", "JobAssigned"]
    assert after["statistics"]["totalAssignedJobs"] == 2
    assert after["statistics"]["totalAcquiredJobs"] == 2
    assert after["statistics"]["totalAvailableJobs"] == 0
