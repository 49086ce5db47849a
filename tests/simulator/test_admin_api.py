"""Admin-API conformance, one or more tests per row 1-13 and 17 of the reference table."""

from __future__ import annotations

import uuid

import httpx
import pytest

from gha_scalesets.simulator.jit import JitConfig
from gha_scalesets.simulator.testing import SimulatorServer
from tests.simulator.raw import AGENTS, SETS, Admin, connect

SCALE_SET_KEYS = {
    "id",
    "name",
    "runnerGroupId",
    "runnerGroupName",
    "labels",
    "RunnerSetting",
    "createdOn",
    "runnerJitConfigUrl",
    "statistics",
}
STATISTICS_KEYS = {
    "totalAvailableJobs",
    "totalAcquiredJobs",
    "totalAssignedJobs",
    "totalRunningJobs",
    "totalRegisteredRunners",
    "totalBusyRunners",
    "totalIdleRunners",
}


@pytest.fixture
def admin(http: httpx.Client, sim: SimulatorServer) -> Admin:
    return connect(http, sim)


def _type_name(response: httpx.Response) -> str:
    return response.json()["typeName"]


# -- 1 runner groups ----------------------------------------------------------------------


def test_row1_runner_groups_by_name(admin: Admin) -> None:
    default = admin.call("GET", "_apis/runtime/runnergroups/", params={"groupName": "Default"})
    assert default.status_code == 200
    assert default.json() == {
        "count": 1,
        "value": [{"id": 1, "name": "Default", "size": 0, "isDefaultGroup": True}],
    }
    gpu = admin.call("GET", "_apis/runtime/runnergroups/", params={"groupName": "gpu"}).json()
    assert gpu["count"] == 1
    assert gpu["value"][0]["id"] == 2
    assert gpu["value"][0]["isDefaultGroup"] is False
    none = admin.call("GET", "_apis/runtime/runnergroups/", params={"groupName": "nope"})
    assert none.json() == {"count": 0, "value": []}


# -- 2-6 scale sets -----------------------------------------------------------------------


def test_row4_create_returns_200_with_exact_casing(admin: Admin) -> None:
    created = admin.create_scale_set("my-set", labels=["my-set", "linux"])
    assert set(created) == SCALE_SET_KEYS
    assert set(created["statistics"]) == STATISTICS_KEYS
    assert created["runnerGroupName"] == "Default"
    assert created["labels"] == [
        {"type": "System", "name": "my-set"},
        {"type": "System", "name": "linux"},
    ]
    assert created["RunnerSetting"]["disableUpdate"] is True
    assert created["createdOn"].endswith("Z") and not created["createdOn"].startswith("0001")
    assert created["runnerJitConfigUrl"] == (
        f"{admin.base}{SETS}/{created['id']}/generatejitconfig"
    )


def test_row4_create_defaults_labels_and_rejects_missing_name(admin: Admin) -> None:
    response = admin.call("POST", SETS, json={"name": "bare", "RunnerSetting": {}})
    assert response.status_code == 200
    assert response.json()["labels"] == [{"type": "System", "name": "bare"}]
    assert response.json()["runnerGroupId"] == 1
    assert admin.call("POST", SETS, json={"RunnerSetting": {}}).status_code == 400


def test_row4_names_are_unique_per_group(admin: Admin) -> None:
    admin.create_scale_set("twin")
    duplicate = admin.call("POST", SETS, json={"name": "twin", "runnerGroupId": 1})
    assert duplicate.status_code == 409
    in_other_group = admin.create_scale_set("twin", group_id=2)
    assert in_other_group["runnerGroupName"] == "gpu"


def test_row2_get_by_name_and_group(admin: Admin) -> None:
    created = admin.create_scale_set("find-me")
    found = admin.call("GET", SETS, params={"runnerGroupId": 1, "name": "find-me"})
    assert found.status_code == 200
    assert found.json()["count"] == 1
    assert found.json()["value"][0]["id"] == created["id"]
    other_group = admin.call("GET", SETS, params={"runnerGroupId": 2, "name": "find-me"})
    assert other_group.json() == {"count": 0, "value": []}


def test_row3_get_by_id_and_404(admin: Admin) -> None:
    created = admin.create_scale_set("by-id")
    response = admin.call("GET", f"{SETS}/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    missing = admin.call("GET", f"{SETS}/999")
    assert missing.status_code == 404
    assert "RunnerScaleSetNotFoundException" in _type_name(missing)


def test_scale_sets_are_private_to_their_tenant(
    http: httpx.Client, sim: SimulatorServer, admin: Admin
) -> None:
    created = admin.create_scale_set("mine")
    other = connect(http, sim, "other-org")
    assert other.call("GET", f"{SETS}/{created['id']}").status_code == 404


def test_row5_patch_renames_and_moves(admin: Admin) -> None:
    created = admin.create_scale_set("old-name")
    body = {"name": "new-name", "runnerGroupId": 2, "RunnerSetting": {"disableUpdate": True}}
    response = admin.call("PATCH", f"{SETS}/{created['id']}", json=body)
    assert response.status_code == 200
    assert response.json()["name"] == "new-name"
    assert response.json()["runnerGroupName"] == "gpu"
    assert admin.call("PATCH", f"{SETS}/999", json=body).status_code == 404


def test_row6_delete_is_204_then_404(admin: Admin) -> None:
    created = admin.create_scale_set("doomed")
    response = admin.call("DELETE", f"{SETS}/{created['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert admin.call("GET", f"{SETS}/{created['id']}").status_code == 404
    again = admin.call("DELETE", f"{SETS}/{created['id']}")
    assert again.status_code == 404
    assert "RunnerScaleSetNotFoundException" in _type_name(again)


# -- 7-10 JIT configs and agents ----------------------------------------------------------


def test_row7_jit_config_and_duplicate_name(admin: Admin) -> None:
    ss = admin.create_scale_set("jit-set")
    response = admin.jit(ss["id"], "runner-1")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"runner", "encodedJITConfig"}
    assert body["runner"] == {
        "id": body["runner"]["id"],
        "name": "runner-1",
        "runnerScaleSetId": ss["id"],
    }
    assert JitConfig.decode(body["encodedJITConfig"]).runner_id == body["runner"]["id"]
    duplicate = admin.jit(ss["id"], "runner-1")
    assert duplicate.status_code == 409
    assert "AgentExistsException" in _type_name(duplicate)
    assert admin.jit(999, "runner-2").status_code == 404


def test_row8_row9_agent_by_id_and_by_name(admin: Admin) -> None:
    ss = admin.create_scale_set("agents")
    runner = admin.jit(ss["id"], "agent-7").json()["runner"]
    by_id = admin.call("GET", f"{AGENTS}/{runner['id']}")
    assert by_id.status_code == 200
    assert by_id.json() == runner
    by_name = admin.call("GET", AGENTS, params={"agentName": "agent-7"})
    assert by_name.json() == {"count": 1, "value": [runner]}
    assert admin.call("GET", AGENTS, params={"agentName": "nobody"}).json()["count"] == 0
    missing = admin.call("GET", f"{AGENTS}/999")
    assert missing.status_code == 404
    assert "AgentNotFoundException" in _type_name(missing)


def test_row10_delete_agent_and_busy_runner(
    http: httpx.Client, sim: SimulatorServer, admin: Admin
) -> None:
    ss = admin.create_scale_set("busy-set")
    idle = admin.jit(ss["id"], "idle").json()["runner"]
    assert admin.call("DELETE", f"{AGENTS}/{idle['id']}").status_code == 204
    assert admin.call("GET", f"{AGENTS}/{idle['id']}").status_code == 404

    listener = admin.listener(ss["id"])
    sim.queue_jobs(["busy-set"], 1, duration_seconds=60)
    listener.next_events()  # the poll lets the job be assigned
    jit = JitConfig.decode(admin.jit(ss["id"], "busy").json()["encodedJITConfig"])
    runner_url = f"{sim.url}/_sim/runner/{jit.runner_id}"
    auth = {"Authorization": f"Bearer {jit.secret}"}
    assert http.post(f"{runner_url}/online", headers=auth).status_code == 204
    assert http.post(f"{runner_url}/acquire", headers=auth).status_code == 200
    busy = admin.call("DELETE", f"{AGENTS}/{jit.runner_id}")
    assert busy.status_code == 400
    assert "JobStillRunningException" in _type_name(busy)
    assert sim.stats()["runners"] == {
        "registered": 1,
        "online": 1,
        "busy": 1,
        "duplicate_names": 0,
        "by_scale_set": {"busy-set": 1},
    }
    statistics = admin.call("GET", f"{SETS}/{ss['id']}").json()["statistics"]
    assert statistics == {
        "totalAvailableJobs": 0,
        "totalAcquiredJobs": 0,
        "totalAssignedJobs": 1,
        "totalRunningJobs": 1,
        "totalRegisteredRunners": 1,
        "totalBusyRunners": 1,
        "totalIdleRunners": 0,
    }


# -- 11-13 sessions -----------------------------------------------------------------------


def test_row11_session_create_and_conflict(sim: SimulatorServer, admin: Admin) -> None:
    ss = admin.create_scale_set("sessions")
    response = admin.create_session(ss["id"], owner="pod-a")
    assert response.status_code == 200
    session = response.json()
    assert set(session) == {
        "sessionId",
        "ownerName",
        "runnerScaleSet",
        "messageQueueUrl",
        "messageQueueAccessToken",
        "statistics",
    }
    assert str(uuid.UUID(session["sessionId"])) == session["sessionId"]
    assert session["ownerName"] == "pod-a"
    assert session["runnerScaleSet"]["id"] == ss["id"]
    assert session["messageQueueUrl"].startswith(f"{sim.url}/_services/broker/")
    assert set(session["statistics"]) == STATISTICS_KEYS
    conflict = admin.create_session(ss["id"], owner="pod-b")
    assert conflict.status_code == 409
    assert "RunnerScaleSetSessionConflictException" in _type_name(conflict)
    assert "pod-a" in conflict.json()["message"]
    assert admin.create_session(999).status_code == 404


def test_row12_refresh_rotates_the_queue_token(admin: Admin) -> None:
    ss = admin.create_scale_set("refresh")
    listener = admin.listener(ss["id"])
    old_token = listener.token
    path = f"{SETS}/{ss['id']}/sessions/{listener.session['sessionId']}"
    refreshed = admin.call("PATCH", path)
    assert refreshed.status_code == 200
    new_session = refreshed.json()
    assert new_session["sessionId"] == listener.session["sessionId"]
    assert new_session["messageQueueAccessToken"] != old_token
    assert listener.get(token=old_token).status_code == 401
    listener.session = new_session
    assert listener.get().status_code == 202
    unknown = admin.call("PATCH", f"{SETS}/{ss['id']}/sessions/{uuid.uuid4()}")
    assert unknown.status_code == 404
    assert "RunnerAdminException" in _type_name(unknown)


def test_row13_delete_session(admin: Admin) -> None:
    ss = admin.create_scale_set("bye")
    listener = admin.listener(ss["id"])
    path = f"{SETS}/{ss['id']}/sessions/{listener.session['sessionId']}"
    deleted = admin.call("DELETE", path)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert listener.get().status_code == 401
    again = admin.call("DELETE", path)
    assert again.status_code == 400
    assert "RunnerScaleSetSessionExpiredException" in _type_name(again)
    assert admin.create_session(ss["id"]).status_code == 200


def test_silent_session_expires_after_ttl(sim: SimulatorServer, admin: Admin) -> None:
    ss = admin.create_scale_set("ttl")
    listener = admin.listener(ss["id"], owner="crashed-pod")
    assert admin.create_session(ss["id"]).status_code == 409
    sim.advance_clock(121)
    assert admin.create_session(ss["id"], owner="new-pod").status_code == 200
    assert listener.get().status_code == 401


# -- 17 acquirable jobs -------------------------------------------------------------------


def test_row17_acquirable_jobs_empty_is_204(admin: Admin) -> None:
    ss = admin.create_scale_set("nothing")
    response = admin.call("GET", f"{SETS}/{ss['id']}/acquirablejobs")
    assert response.status_code == 204
