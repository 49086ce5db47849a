"""Fidelity points where upstream's behaviour is easy to get wrong: label routing by name and
what a PATCH does with the fields it leaves out (docs/corporate-networks.md)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gha_scalesets.simulator.testing import SimulatorServer
from tests.simulator.raw import SETS, Admin, Listener, connect

ZERO_TIME = "0001-01-01T00:00:00Z"


@pytest.fixture
def admin(http: httpx.Client, sim: SimulatorServer) -> Admin:
    return connect(http, sim)


def _assigned(listener: Listener) -> list[int]:
    listener.get()  # the first poll tells the service the capacity
    _, events = listener.next_events()
    return [e["runnerRequestId"] for e in events if e["messageType"] == "JobAssigned"]


def _patch(admin: Admin, scale_set_id: int, body: dict[str, Any]) -> dict[str, Any]:
    response = admin.call("PATCH", f"{SETS}/{scale_set_id}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_job_targeting_the_name_is_served_when_the_name_is_not_a_label(
    admin: Admin, sim: SimulatorServer
) -> None:
    ss = admin.create_scale_set("gpu-pool", labels=["linux", "cuda"])
    assert [label["name"] for label in ss["labels"]] == ["linux", "cuda"]
    listener = admin.listener(ss["id"])
    [by_name] = sim.queue_jobs(["gpu-pool"], 1)
    assert _assigned(listener) == [by_name]
    [by_name_and_label] = sim.queue_jobs(["GPU-Pool", "cuda"], 1)  # case-insensitive
    assert _assigned(listener) == [by_name_and_label]

    # after a rename the new name routes and the old one no longer does
    _patch(admin, ss["id"], {**ss, "name": "gpu-pool-2", "createdOn": ZERO_TIME})
    [renamed] = sim.queue_jobs(["gpu-pool-2"], 1)
    assert _assigned(listener) == [renamed]
    sim.queue_jobs(["gpu-pool"], 1)
    assert listener.get().status_code == 202
    assert sim.stats()["jobs"]["queued"] == 1


def test_a_patch_replaces_labels_and_settings_and_keeps_an_omitted_name_or_group(
    admin: Admin,
) -> None:
    ss = admin.create_scale_set("patched", labels=["patched", "fast"])
    assert ss["RunnerSetting"]["disableUpdate"] is True
    # an ARC-style partial body: Go always sends RunnerSetting, omits empty fields
    partial = _patch(admin, ss["id"], {"runnerGroupId": 1, "RunnerSetting": {}})
    assert (partial["name"], partial["runnerGroupId"]) == ("patched", 1)  # kept
    assert [label["name"] for label in partial["labels"]] == ["patched"]  # not merged
    assert partial["RunnerSetting"]["disableUpdate"] is False  # replaced whole
    whole = _patch(
        admin,
        ss["id"],
        {
            "name": "patched",
            "runnerGroupId": 1,
            "labels": [{"type": "System", "name": "fast"}],
            "RunnerSetting": {"disableUpdate": True},
            "createdOn": ZERO_TIME,
        },
    )
    assert [label["name"] for label in whole["labels"]] == ["fast"]
    assert whole["RunnerSetting"]["disableUpdate"] is True
