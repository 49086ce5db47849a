"""``diff``: replace on another scope, update in place otherwise, unknowns count as changes.

The zero-request guarantee is shown against the simulator in test_grpc_lifecycle.py; these tests
pin the decisions themselves.
"""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.output import Unknown

from gha_scalesets.providers import ScaleSetProvider

INPUTS: dict[str, Any] = {
    "github_config_url": "https://github.com/acme",
    "name": "linux-x64",
    "runner_group": "Default",
    "labels": ["linux-x64", "gpu"],
    "disable_update": True,
    "github_token": "ghp_old",
}
OUTPUTS = INPUTS | {"scale_set_id": 42, "runner_group_id": 1, "runner_group_name": "Default"}


def diff(**changes: Any):
    return ScaleSetProvider().diff("42", OUTPUTS, INPUTS | changes)


def test_unchanged_inputs_are_no_change() -> None:
    result = diff()
    assert result.changes is False
    assert result.replaces == []
    assert set(result.stables) >= {"scale_set_id", "runner_group_id", "github_config_url"}


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "linux-arm64"},
        {"labels": ["linux-x64"]},
        {"runner_group": "builders"},
        {"disable_update": False},
    ],
)
def test_scale_set_fields_update_in_place(changes: dict[str, Any]) -> None:
    result = diff(**changes)
    assert result.changes is True
    assert result.replaces == []
    assert "scale_set_id" in result.stables


def test_a_runner_group_change_is_not_stable_for_the_group_outputs() -> None:
    assert "runner_group_id" not in diff(runner_group="builders").stables


def test_credential_rotation_is_an_update(rsa_pem: str) -> None:
    assert diff(github_token="ghp_new").changes is True
    app = {"client_id": "Iv1", "installation_id": 7, "private_key": rsa_pem}
    switched = diff(github_token=None, github_app=app)
    assert switched.changes is True
    assert switched.replaces == []


@pytest.mark.parametrize(
    "url",
    ["https://github.com/other", "https://github.com/acme/repo", "https://ghes.example/acme"],
)
def test_another_scope_replaces_create_before_delete(url: str) -> None:
    result = diff(github_config_url=url)
    assert result.changes is True
    assert result.replaces == ["github_config_url"]
    # Another org/repo/enterprise is another namespace: no name collision, so the new one
    # is created first and runners always have a scale set.
    assert result.delete_before_replace is False
    assert "scale_set_id" not in result.stables


@pytest.mark.parametrize("url", ["https://github.com/ACME", "https://www.github.com/acme"])
def test_another_spelling_of_the_same_org_is_no_change(url: str) -> None:
    assert diff(github_config_url=url).changes is False


def test_label_order_is_no_change() -> None:
    assert diff(labels=["gpu", "linux-x64"]).changes is False


def test_unknown_values_at_preview_count_as_changes() -> None:
    assert diff(name=Unknown()).changes is True
    assert diff(labels=["linux-x64", Unknown()]).changes is True
    replaced = diff(github_config_url=Unknown())
    assert replaced.replaces == ["github_config_url"]


def test_outputs_missing_from_old_state_are_a_change() -> None:
    olds = {k: v for k, v in OUTPUTS.items() if k != "disable_update"}
    assert ScaleSetProvider().diff("42", olds, INPUTS).changes is True
