"""The provider driven through the SDK's dynamic-provider host, as the engine drives it,
against the scale-set simulator over HTTP.

Every call is a real protobuf request to a ``python -m pulumi.dynamic`` process that unpickles
the provider (a dill round trip into a fresh process); request counts come from the
simulator's own statistics.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from gha_scalesets.scaleset import PatCredentials, SyncClient
from gha_scalesets.scaleset.auth import TokenCache
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT as PAT
from tests.fixtures.sim import SIM_RUNNER_GROUP, Requests
from tests.support.provider_host import DIFF_NONE, DIFF_SOME, UNKNOWN, Host, without_provider

CREATE = "POST _apis/runtime/runnerscalesets"
LOOKUP_BY_NAME = "GET _apis/runtime/runnerscalesets"
RUNNER_GROUPS = "GET _apis/runtime/runnergroups/"
PATCH = "PATCH _apis/runtime/runnerscalesets/{id}"
DELETE = "DELETE _apis/runtime/runnerscalesets/{id}"
REGISTRATION_TOKEN = "POST orgs/{org}/actions/runners/registration-token"
RUNNER_REGISTRATION = "POST actions/runner-registration"
ACCESS_TOKENS = "POST app/installations/{id}/access_tokens"


@pytest.fixture
def acme(sim: SimulatorServer) -> dict[str, Any]:
    """Inputs of a scale set in org ``acme`` as the program declares them (before check)."""
    return {
        "github_config_url": sim.config_url("acme"),
        "name": "linux-x64",
        "labels": ["linux-x64", "gpu"],
        "disable_update": True,
        "github_token": PAT,
    }


@pytest.fixture
def github(sim: SimulatorServer) -> Iterator[SyncClient]:
    """A client acting "on GitHub", outside Pulumi (another person, the UI, a script)."""
    # Its own token cache: tokens of earlier tests died with the simulator's reset.
    client = SyncClient(sim.config_url("acme"), PatCredentials(PAT), token_cache=TokenCache())
    yield client
    client.close()


def checked(host: Host, name: str, news: dict[str, Any]) -> dict[str, Any]:
    inputs, failures = host.check(name, news)
    assert failures == {}
    return without_provider(inputs)


def test_create_read_update_delete(host: Host, acme: dict[str, Any], requests: Requests) -> None:
    inputs = checked(host, "linux", acme)
    id_, outs = host.create("linux", inputs)
    outs = without_provider(outs)
    assert outs["scale_set_id"] == int(id_)  # a float on the wire, like every number
    assert outs == inputs | {
        "scale_set_id": int(id_),
        "runner_group_id": outs["runner_group_id"],
        "runner_group_name": "Default",
    }
    created = requests.delta()
    assert created[CREATE] == 1

    relabelled = checked(host, "linux", acme | {"labels": ["linux-x64", "cuda"], "name": "gpu-x64"})
    updated = without_provider(host.update("linux", id_, outs, relabelled))
    assert updated["name"] == "gpu-x64"
    assert sorted(updated["labels"]) == ["cuda", "linux-x64"]
    assert updated["scale_set_id"] == int(id_)
    served = requests.delta()
    assert served[PATCH] == 1
    assert served[CREATE] == 0

    refreshed_id, refreshed, refreshed_inputs = host.read("linux", id_, updated, relabelled)
    assert refreshed_id == id_
    assert without_provider(refreshed) == updated
    assert without_provider(refreshed_inputs) == relabelled  # no drift: the inputs stand

    host.delete("linux", id_, updated)
    assert requests.delta()[DELETE] == 1
    host.delete("linux", id_, updated)  # already gone: still success
    gone_id, gone, _ = host.read("linux", id_, updated)
    assert (gone_id, without_provider(gone)) == ("", {})


DIFFS: list[tuple[dict[str, Any], tuple[int, list[str]]]] = [
    ({}, (DIFF_NONE, [])),
    ({"labels": ["gpu", "linux-x64"]}, (DIFF_NONE, [])),  # order is no change
    ({"name": "gpu-x64"}, (DIFF_SOME, [])),
    ({"labels": ["linux-x64"]}, (DIFF_SOME, [])),
    ({"runner_group": SIM_RUNNER_GROUP}, (DIFF_SOME, [])),
    ({"disable_update": False}, (DIFF_SOME, [])),
    ({"github_token": "ghp_rotated"}, (DIFF_SOME, [])),
    ({"github_config_url": "https://github.com/acme"}, (DIFF_SOME, ["github_config_url"])),
]


def test_diffs_are_decided_offline(host: Host, acme: dict[str, Any], requests: Requests) -> None:
    id_, outs = host.create("linux", checked(host, "linux", acme))
    requests.delta()
    for change, expected in DIFFS:
        news = checked(host, "linux", acme | change)
        diff = host.diff("linux", id_, outs, news)
        assert (diff.changes, diff.replaces) == expected, change
        # Another org/repo/enterprise is another namespace: no name collision, so the
        # replacement is created before the old scale set is deleted.
        assert diff.delete_before_replace is False
    assert requests.delta() == Counter()  # not one request, changed or not


def test_a_runner_group_change_moves_the_scale_set_in_place(
    host: Host, acme: dict[str, Any], requests: Requests
) -> None:
    inputs = checked(host, "linux", acme)
    id_, outs = host.create("linux", inputs)
    moved = checked(host, "linux", acme | {"runner_group": SIM_RUNNER_GROUP})
    assert (host.diff("linux", id_, outs, moved).replaces) == []
    requests.delta()

    updated = without_provider(host.update("linux", id_, outs, moved))
    assert updated["runner_group"] == updated["runner_group_name"] == SIM_RUNNER_GROUP
    assert updated["runner_group_id"] != outs["runner_group_id"]
    assert updated["scale_set_id"] == int(id_)
    served = requests.delta()
    assert (served[PATCH], served[CREATE], served[DELETE]) == (1, 0, 0)


def test_credential_rotation_updates_state_without_touching_the_scale_set(
    host: Host, acme: dict[str, Any], requests: Requests
) -> None:
    inputs = checked(host, "linux", acme)
    id_, outs = host.create("linux", inputs)
    requests.delta()
    rotated = inputs | {"github_token": "ghp_rotated_token"}

    diff = host.diff("linux", id_, outs, rotated)
    assert (diff.changes, diff.replaces) == (DIFF_SOME, [])
    updated = without_provider(host.update("linux", id_, outs, rotated))
    assert updated["github_token"] == "ghp_rotated_token"
    assert updated["scale_set_id"] == int(id_)
    assert requests.delta() == Counter()


def test_refresh_records_drift_and_the_next_update_reverts_it(
    host: Host, acme: dict[str, Any], github: SyncClient
) -> None:
    inputs = checked(host, "linux", acme)
    id_, outs = host.create("linux", inputs)
    github.update_scale_set(int(id_), labels=["hand-edited"], disable_update=False)

    _, refreshed, refreshed_inputs = host.read("linux", id_, outs, inputs)
    assert without_provider(refreshed)["labels"] == ["hand-edited"]
    assert without_provider(refreshed)["disable_update"] is False
    # The inputs follow GitHub, so the engine's diff against the program names the drift.
    drifted = without_provider(refreshed_inputs)
    assert drifted == inputs | {"labels": ["hand-edited"], "disable_update": False}
    assert host.diff("linux", id_, refreshed, inputs).changes == DIFF_SOME

    reverted = without_provider(host.update("linux", id_, refreshed, inputs))
    live = github.get_scale_set(int(id_))
    assert [label.name for label in live.labels] == ["linux-x64", "gpu"]
    assert live.runner_setting.disable_update is True
    assert host.diff("linux", id_, reverted, inputs).changes == DIFF_NONE


def test_preview_with_unknown_values_makes_no_request(
    host: Host, acme: dict[str, Any], requests: Requests
) -> None:
    inputs = checked(host, "linux", acme)
    id_, outs = host.create("linux", inputs)
    requests.delta()
    preview = acme | {"name": UNKNOWN, "labels": [UNKNOWN, "gpu"], "github_token": UNKNOWN}
    checked_preview = checked(host, "linux", preview)
    diff = host.diff("linux", id_, outs, checked_preview)
    assert (diff.changes, diff.replaces) == (DIFF_SOME, [])
    unknown_url = host.diff("linux", id_, outs, checked_preview | {"github_config_url": UNKNOWN})
    assert unknown_url.replaces == ["github_config_url"]
    assert requests.delta() == Counter()


def test_check_failures_stop_preview_before_any_request(
    host: Host, acme: dict[str, Any], requests: Requests
) -> None:
    _, failures = host.check(
        "linux",
        acme
        | {
            "github_config_url": "https://github.com/a/b/c",
            "name": "",
            "labels": ["ok", "bad,label"],
            "github_app": {"client_id": "Iv1", "installation_id": 7, "private_key": "nope"},
        },
    )
    assert set(failures) == {
        "github_config_url",
        "name",
        "labels",
        "github_app",
        "github_app.private_key",
    }
    assert "exactly one of github_token or github_app" in " ".join(failures["github_app"])
    assert requests.delta() == Counter()


def test_an_existing_scale_set_is_adopted_only_when_asked(
    host: Host, acme: dict[str, Any], github: SyncClient, requests: Requests
) -> None:
    group = github.get_runner_group_by_name("Default")
    existing = github.create_scale_set(name="linux-x64", runner_group_id=group.id, labels=["x"])
    with pytest.raises(grpc.RpcError) as raised:
        host.create("linux", checked(host, "linux", acme))
    details = raised.value.details()
    assert "already exists" in details
    assert "adopt_existing=True" in details
    assert PAT not in details
    assert github.get_scale_set(existing.id).labels[0].name == "x"  # untouched

    requests.delta()
    id_, outs = host.create("linux", checked(host, "linux", acme | {"adopt_existing": True}))
    assert id_ == str(existing.id)
    assert without_provider(outs)["labels"] == ["linux-x64", "gpu"]
    live = github.get_scale_set(existing.id)
    assert sorted(label.name for label in live.labels) == ["gpu", "linux-x64"]
    assert live.runner_setting.disable_update is True
    served = requests.delta()
    assert (served[CREATE], served[PATCH]) == (0, 1)


def test_adopting_a_scale_set_that_matches_sends_no_update(
    host: Host, acme: dict[str, Any], github: SyncClient, requests: Requests
) -> None:
    group = github.get_runner_group_by_name("Default")
    existing = github.create_scale_set(
        name="linux-x64", runner_group_id=group.id, labels=["gpu", "linux-x64"], disable_update=True
    )
    requests.delta()
    id_, _ = host.create("linux", checked(host, "linux", acme | {"adopt_existing": True}))
    assert id_ == str(existing.id)
    served = requests.delta()
    assert (served[CREATE], served[PATCH]) == (0, 0)


def test_a_missing_runner_group_fails_with_the_fix_and_creates_nothing(
    host: Host, acme: dict[str, Any], requests: Requests
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        host.create("linux", checked(host, "linux", acme | {"runner_group": "gpu-pool"}))
    assert "no runner group named 'gpu-pool'" in raised.value.details()
    assert requests.delta()[CREATE] == 0


def test_a_scale_set_deleted_on_github_disappears_on_refresh_and_is_recreated(
    host: Host, acme: dict[str, Any], github: SyncClient, requests: Requests
) -> None:
    inputs = checked(host, "linux", acme)
    id_, outs = host.create("linux", inputs)
    github.delete_scale_set(int(id_))

    gone_id, gone, _ = host.read("linux", id_, outs)
    assert (gone_id, without_provider(gone)) == ("", {})
    requests.delta()
    new_id, _ = host.create("linux", inputs)  # what `pulumi up` does next
    assert new_id != id_
    assert requests.delta()[CREATE] == 1


def test_update_of_a_scale_set_deleted_on_github_says_to_refresh(
    host: Host, acme: dict[str, Any], github: SyncClient
) -> None:
    inputs = checked(host, "linux", acme)
    id_, outs = host.create("linux", inputs)
    github.delete_scale_set(int(id_))
    with pytest.raises(grpc.RpcError) as raised:
        host.update("linux", id_, outs, inputs | {"name": "renamed"})
    assert "pulumi refresh" in raised.value.details()


def test_twenty_scale_sets_in_one_process_authenticate_once(
    host: Host, acme: dict[str, Any], requests: Requests
) -> None:
    declared = {f"ss{n}": acme | {"name": f"linux-{n}", "labels": None} for n in range(20)}
    inputs = {name: checked(host, name, news) for name, news in declared.items()}
    # As the engine does: several Creates in flight at once (the host serves four at a time).
    with ThreadPoolExecutor(max_workers=4) as pool:
        created = list(pool.map(lambda name: host.create(name, inputs[name]), inputs))
    served = requests.delta()
    assert len({id_ for id_, _ in created}) == 20
    assert served == {
        REGISTRATION_TOKEN: 1,  # the auth chain, once
        RUNNER_REGISTRATION: 1,
        RUNNER_GROUPS: 1,  # one lookup per group and process
        LOOKUP_BY_NAME: 20,  # the "already exists?" check that refuses silent adoption
        CREATE: 20,
    }


def test_app_credentials_authenticate_once_and_stay_out_of_errors(
    host: Host,
    acme: dict[str, Any],
    sim_app_credentials: tuple[str, int, str],
    rsa_pem: str,
    requests: Requests,
) -> None:
    client_id, installation_id, pem = sim_app_credentials
    app = {"client_id": client_id, "installation_id": installation_id, "private_key": pem}
    base = {k: v for k, v in acme.items() if k != "github_token"} | {"github_app": app}
    for n in range(3):
        host.create(f"ss{n}", checked(host, f"ss{n}", base | {"name": f"app-{n}"}))
    assert requests.delta() == {
        ACCESS_TOKENS: 1,
        REGISTRATION_TOKEN: 1,
        RUNNER_REGISTRATION: 1,
        RUNNER_GROUPS: 1,
        LOOKUP_BY_NAME: 3,
        CREATE: 3,
    }

    # A key GitHub does not know for this App: refused, and the message quotes no key material.
    wrong_key = base | {"name": "app-x", "github_app": app | {"private_key": rsa_pem}}
    with pytest.raises(grpc.RpcError) as raised:
        host.create("x", checked(host, "x", wrong_key))
    details = raised.value.details()
    assert "HTTP 401" in details
    assert all(line not in details for line in rsa_pem.splitlines()[1:-1])


def test_a_rejected_token_fails_with_a_secret_free_message(
    host: Host, acme: dict[str, Any]
) -> None:
    bad = "ghp_not_a_valid_token_for_the_simulator"
    with pytest.raises(grpc.RpcError) as raised:
        host.create("linux", checked(host, "linux", acme | {"github_token": bad}))
    details = raised.value.details()
    assert "HTTP 401" in details
    assert bad not in details


def test_secret_wrapped_inputs_work_too(sim: SimulatorServer, acme: dict[str, Any]) -> None:
    host = Host(wrap_secrets=True)
    try:
        inputs = checked(host, "linux", acme)
        id_, outs = host.create("linux", inputs)
        assert without_provider(outs)["scale_set_id"] == int(id_)
        host.delete("linux", id_, outs)
    finally:
        host.close()
