"""Every `pulumi` flow of a ScaleSet, run by the real engine against the simulator.

Each test asserts what the engine printed or returned (change summary, per-resource operations and
the properties it names) and the GitHub requests the operation cost.
"""

from __future__ import annotations

import pytest
from pulumi import automation as auto

from gha_scalesets.providers.props import OUTPUT_KEYS
from gha_scalesets.scaleset import SyncClient
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT, SIM_RUNNER_GROUP, Requests
from tests.support.engine import ROTATED_PAT, Credentials, Declared, Engine, run
from tests.support.github import github_client

CREATE = "POST _apis/runtime/runnerscalesets"
PATCH = "PATCH _apis/runtime/runnerscalesets/{id}"
DELETE = "DELETE _apis/runtime/runnerscalesets/{id}"


def labels_of(github: SyncClient, scale_set_id: int) -> list[str]:
    return sorted(label.name for label in github.get_scale_set(scale_set_id).labels)


def up(stack: auto.Stack) -> int:
    """``pulumi up``; the scale set id of resource ``linux``."""
    result = stack.up()
    return int(result.outputs["linux_id"].value)


def test_preview_up_and_an_unchanged_preview(
    stack: auto.Stack, declared: Declared, requests: Requests, github: SyncClient
) -> None:
    declared["gpu"] = declared["linux"] | {"name": "gpu-x64", "runner_group": SIM_RUNNER_GROUP}

    preview = run(stack.preview)
    assert preview.result.change_summary == {"create": 3}  # + the stack itself
    assert preview.ops == {"linux": ["create"], "gpu": ["create"]}
    assert sum(requests.delta().values()) == 0

    done = run(stack.up)
    assert done.result.summary.resource_changes == {"create": 3}
    served = requests.delta()
    assert served[CREATE] == 2
    # One auth chain for both scale sets (PAT: registration token + runner registration), one
    # lookup per runner group, one "already exists?" lookup and one create per scale set.
    assert sum(served.values()) == 8, served
    linux = int(done.result.outputs["linux_id"].value)
    assert labels_of(github, linux) == ["docker", "linux-x64"]
    requests.delta()

    again = run(stack.preview)
    assert again.result.change_summary == {"same": 3}
    assert sum(requests.delta().values()) == 0


CHANGES = [
    ({"labels": ["linux-x64", "docker", "arm64"]}, "labels"),
    ({"name": "linux-renamed"}, "name"),
    ({"runner_group": SIM_RUNNER_GROUP}, "runner_group"),
    ({"disable_update": True}, "disable_update"),
]


def test_each_change_is_an_update_in_place_that_names_the_property(
    stack: auto.Stack, declared: Declared, requests: Requests, github: SyncClient
) -> None:
    scale_set_id = up(stack)
    for change, prop in CHANGES:
        declared["linux"] |= change
        requests.delta()

        preview = run(stack.preview, diff=True)
        assert preview.ops == {"linux": ["update"]}, prop
        assert preview.changed_properties() == {prop}
        assert sum(requests.delta().values()) == 0

        assert up(stack) == scale_set_id  # the same scale set, changed in place
        served = requests.delta()
        assert (served[PATCH], served[CREATE], served[DELETE]) == (1, 0, 0), prop
        live = github.get_scale_set(scale_set_id)
        assert {
            "labels": sorted(label.name for label in live.labels),
            "name": live.name,
            "runner_group": live.runner_group_name,
            "disable_update": live.runner_setting.disable_update,
        }[prop] == (sorted(change[prop]) if prop == "labels" else change[prop])
    assert run(stack.preview).result.change_summary == {"same": 2}


def test_config_url_spelling_is_no_change(
    stack: auto.Stack, declared: Declared, requests: Requests, sim: SimulatorServer
) -> None:
    up(stack)
    declared["linux"]["github_config_url"] = sim.config_url("ACME") + "/"
    requests.delta()
    assert run(stack.preview).result.change_summary == {"same": 2}
    assert sum(requests.delta().values()) == 0


def test_another_org_replaces_creating_before_deleting(
    stack: auto.Stack, declared: Declared, requests: Requests, sim: SimulatorServer
) -> None:
    old_id = up(stack)
    declared["linux"]["github_config_url"] = sim.config_url("other-org")

    preview = run(stack.preview, diff=True)
    # The outputs GitHub assigns show as recomputed; of the inputs, only the URL changed.
    assert preview.changed_properties() - set(OUTPUT_KEYS) == {"github_config_url"}
    assert preview.ops["linux"] == ["create-replacement", "replace", "delete-replaced"]

    requests.delta()
    done = run(stack.up)
    assert done.ops["linux"] == ["create-replacement", "replace", "delete-replaced"]
    new_id = int(done.result.outputs["linux_id"].value)
    assert new_id != old_id
    served = requests.delta()
    assert (served[CREATE], served[DELETE]) == (1, 1)
    with github_client(sim, "other-org") as other:
        assert other.get_scale_set(new_id).name == "linux-x64"


def test_credential_rotation_and_a_switch_to_an_app_cost_no_request(
    stack: auto.Stack, declared: Declared, requests: Requests
) -> None:
    scale_set_id = up(stack)
    stack.set_config("githubToken", auto.ConfigValue(ROTATED_PAT, secret=True))
    requests.delta()

    rotated = run(stack.up)
    assert rotated.ops == {"linux": ["update"]}
    assert sum(requests.delta().values()) == 0

    declared["linux"]["credential"] = "app"
    switched = run(stack.up)
    assert switched.ops == {"linux": ["update"]}
    assert sum(requests.delta().values()) == 0
    assert int(switched.result.outputs["linux_id"].value) == scale_set_id

    # The new credential is the one in use: a refresh authenticates as the App.
    run(stack.refresh)
    assert requests.delta()["POST app/installations/{id}/access_tokens"] == 1


def test_drift_on_github_is_named_by_the_preview_after_a_refresh(
    stack: auto.Stack, github: SyncClient, requests: Requests
) -> None:
    scale_set_id = up(stack)
    github.update_scale_set(scale_set_id, labels=["linux-x64", "hand-edited"])

    refreshed = run(stack.refresh)
    assert refreshed.result.summary.resource_changes.get("update") == 1

    preview = run(stack.preview, diff=True)
    assert preview.ops == {"linux": ["update"]}
    assert preview.changed_properties() == {"labels"}
    assert '"hand-edited" => "docker"' in preview.stdout  # what drifted, and back to what

    requests.delta()
    up(stack)
    assert requests.delta()[PATCH] == 1
    assert labels_of(github, scale_set_id) == ["docker", "linux-x64"]


def test_a_scale_set_deleted_on_github(
    stack: auto.Stack, declared: Declared, github: SyncClient, requests: Requests
) -> None:
    old_id = up(stack)
    github.delete_scale_set(old_id)
    declared["linux"]["labels"] = ["linux-x64"]

    with pytest.raises(auto.CommandError) as failed:
        stack.up()
    assert "pulumi refresh" in str(failed.value)

    refreshed = run(stack.refresh)
    assert refreshed.result.summary.resource_changes.get("delete") == 1
    assert "linux_id" not in stack.outputs() or run(stack.preview).ops == {"linux": ["create"]}

    requests.delta()
    new_id = up(stack)
    assert new_id != old_id
    assert requests.delta()[CREATE] == 1
    assert labels_of(github, new_id) == ["linux-x64"]


def test_an_existing_name_fails_readably_until_adopted(
    stack: auto.Stack, declared: Declared, github: SyncClient, requests: Requests
) -> None:
    group = github.get_runner_group_by_name("Default")
    existing = github.create_scale_set(name="linux-x64", runner_group_id=group.id, labels=["old"])

    with pytest.raises(auto.CommandError) as failed:
        stack.up()
    message = str(failed.value)
    assert "already exists" in message
    assert "adopt_existing=True" in message
    assert SIM_PAT not in message

    declared["linux"]["adopt_existing"] = True
    requests.delta()
    adopted = run(stack.up)
    assert adopted.ops == {"linux": ["create"]}
    assert int(adopted.result.outputs["linux_id"].value) == existing.id
    served = requests.delta()
    assert (served[CREATE], served[PATCH]) == (0, 1)
    assert labels_of(github, existing.id) == ["docker", "linux-x64"]

    # The flag only matters when creating: dropping it afterwards changes nothing.
    del declared["linux"]["adopt_existing"]
    assert run(stack.preview).result.change_summary == {"same": 2}


@pytest.mark.parametrize(
    ("change", "prop", "reason"),
    [
        ({"github_config_url": "ftp://github.com/acme"}, "github_config_url", "http(s) URL"),
        ({"labels": ["ok", "bad,label"]}, "labels", "must not contain a comma"),
        ({"credential": "app", "github_token": "ghp_also"}, "github_app", "exactly one of"),
    ],
)
def test_validation_errors_name_the_property_before_any_request(
    stack: auto.Stack,
    declared: Declared,
    requests: Requests,
    change: dict,
    prop: str,
    reason: str,
) -> None:
    declared["linux"] |= change
    with pytest.raises(auto.CommandError) as failed:
        stack.preview()
    message = str(failed.value)
    assert prop in message
    assert reason in message
    assert sum(requests.delta().values()) == 0


def test_a_bad_private_key_is_named_before_any_request(
    stack: auto.Stack, declared: Declared, requests: Requests
) -> None:
    declared["linux"]["credential"] = "app"
    stack.set_config("appPrivateKey", auto.ConfigValue("not a PEM key", secret=True))
    with pytest.raises(auto.CommandError) as failed:
        stack.preview()
    assert "github_app.private_key" in str(failed.value)
    assert sum(requests.delta().values()) == 0


def test_destroy_removes_every_scale_set_even_one_already_gone(
    stack: auto.Stack, declared: Declared, github: SyncClient, requests: Requests
) -> None:
    declared["gpu"] = declared["linux"] | {"name": "gpu-x64"}
    done = stack.up()
    github.delete_scale_set(int(done.outputs["gpu_id"].value))

    requests.delta()
    destroyed = run(stack.destroy)
    assert destroyed.result.summary.resource_changes == {"delete": 3}
    assert requests.delta()[DELETE] == 2
    group = github.get_runner_group_by_name("Default")
    assert github.get_scale_set_by_name(group.id, "linux-x64") is None


def test_no_credential_in_plain_text_in_state_history_or_outputs(
    stack: auto.Stack,
    declared: Declared,
    engine: Engine,
    plain_credentials: Credentials,
) -> None:
    declared["gpu"] = declared["linux"] | {"name": "gpu-x64", "credential": "app"}
    stack.up()
    stack.set_config("githubToken", auto.ConfigValue(ROTATED_PAT, secret=True))
    stack.up()
    stack.refresh()

    outputs = stack.outputs()
    assert outputs["linux_credential"].secret
    assert outputs["gpu_credential"].secret
    files = {str(path.relative_to(engine.backend)): path.read_text() for path in engine.files()}
    assert any("history" in name for name in files), sorted(files)
    exported = engine.cli("stack", "export", "--stack", stack.name)
    assert "ciphertext" in exported  # the credentials are there, encrypted
    places = files | {"stack export": exported}
    # Compare without pytest's assertion introspection, which would print the secrets.
    leaks = sorted(
        where
        for where, text in places.items()
        for secret in plain_credentials.values
        if secret in text
    )
    assert leaks == [], "a credential is in plain text in these places"
