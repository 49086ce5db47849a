"""``check``: every input is validated offline, with a failure that names the property."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.output import Unknown
from pulumi.runtime import rpc

from gha_scalesets.providers import ScaleSetProvider
from gha_scalesets.providers.inputs import MAX_LABEL_LENGTH, MAX_NAME_LENGTH

VALID: dict[str, Any] = {
    "github_config_url": "https://github.com/acme",
    "name": "linux-x64",
    "runner_group": "Default",
    "labels": ["linux-x64", "gpu"],
    "disable_update": True,
    "github_token": "ghp_secret_value_1234",
    "adopt_existing": False,
}


def check(**changes: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    news = {k: v for k, v in (VALID | changes).items() if v is not None}
    result = ScaleSetProvider().check({}, news)
    failures: dict[str, list[str]] = {}
    for failure in result.failures:  # github_app.private_key is under github_app
        failures.setdefault(failure.property.split(".")[0], []).append(failure.reason)
    return result.inputs, failures


def test_valid_inputs_pass_unchanged() -> None:
    inputs, failures = check()
    assert failures == {}
    assert inputs == VALID


def test_defaults_are_filled_so_diffs_compare_like_with_like() -> None:
    inputs, failures = check(
        runner_group=None, labels=None, disable_update=None, adopt_existing=None
    )
    assert failures == {}
    assert inputs["runner_group"] == "Default"
    assert inputs["labels"] == ["linux-x64"]  # the service's own default: the name
    assert inputs["disable_update"] is False
    assert inputs["adopt_existing"] is False


@pytest.mark.parametrize("flag", ["disable_update", "adopt_existing"])
def test_flags_must_be_booleans(flag: str) -> None:
    _, failures = check(**{flag: "yes"})
    assert failures == {flag: ["must be true or false, got 'yes'"]}


def test_config_url_is_normalised() -> None:
    inputs, failures = check(github_config_url="  https://github.com/acme/ ")
    assert failures == {}
    assert inputs["github_config_url"] == "https://github.com/acme"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("https://github.com", "should point to an enterprise"),
        ("https://github.com/a/b/c", "should point to an enterprise"),
        ("ftp://github.com/acme", "expected an http(s) URL"),
        ("https://user:pw@github.com/acme", "credentials must not be embedded"),
        ("", "required, e.g. https://github.com/<org>"),
    ],
)
def test_bad_config_urls_fail_with_the_reason(url: str, fragment: str) -> None:
    _, failures = check(github_config_url=url)
    assert list(failures) == ["github_config_url"]
    assert fragment in failures["github_config_url"][0]
    assert "pw" not in failures["github_config_url"][0]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "must not be empty"),
        ("x" * (MAX_NAME_LENGTH + 1), f"the limit is {MAX_NAME_LENGTH}"),
        (" padded", "whitespace"),
        ("a,b", "comma"),
        ("tab\there", "control characters"),
        (42, "must be a string"),
    ],
)
def test_bad_names_fail(name: Any, fragment: str) -> None:
    _, failures = check(name=name)
    assert fragment in " ".join(failures["name"])


def test_missing_name_fails() -> None:
    _, failures = check(name=None, labels=["a"])
    assert "required: the scale set's name" in failures["name"][0]


def test_name_at_the_limit_passes() -> None:
    _, failures = check(name="x" * MAX_NAME_LENGTH)
    assert failures == {}


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        (["ok", ""], "must not be empty"),
        (["ok", "y" * (MAX_LABEL_LENGTH + 1)], f"the limit is {MAX_LABEL_LENGTH}"),
        (["gpu", "GPU"], "listed twice"),
        (["a,b"], "comma"),
        ("linux", "must be a list"),
        ([1], "must be a string"),
    ],
)
def test_bad_labels_fail(labels: Any, fragment: str) -> None:
    _, failures = check(labels=labels)
    assert fragment in " ".join(failures["labels"])


def test_both_credentials_fail(rsa_pem: str) -> None:
    app = {"client_id": "Iv1.abc", "installation_id": 7, "private_key": rsa_pem}
    _, failures = check(github_app=app)
    assert "exactly one of github_token or github_app" in failures["github_app"][0]


def test_no_credential_fails() -> None:
    _, failures = check(github_token=None)
    assert "a credential is required: github_token (a PAT" in failures["github_token"][0]


def test_app_credentials_are_normalised(rsa_pem: str) -> None:
    # Numbers cross the wire as floats.
    app = {"client_id": 123456.0, "installation_id": 7.0, "private_key": rsa_pem}
    inputs, failures = check(github_token=None, github_app=app)
    assert failures == {}
    assert inputs["github_app"] == {
        "client_id": "123456",
        "installation_id": 7,
        "private_key": rsa_pem,
    }


@pytest.mark.parametrize(
    ("app", "fragment"),
    [
        ({"client_id": "Iv1", "installation_id": 7}, "required with github_app"),
        ({"client_id": "Iv1", "installation_id": 0, "private_key": "k"}, "positive integer"),
        ({"client_id": "Iv1", "installation_id": "seven", "private_key": "k"}, "positive integer"),
        ({"client_id": " ", "installation_id": 7, "private_key": "k"}, "client ID"),
        (
            {"client_id": "Iv1", "installation_id": 7, "private_key": "-----BEGIN NOPE-----"},
            "not a PEM-encoded",
        ),
        ("a string", "must be an object"),
    ],
)
def test_bad_app_credentials_fail(app: Any, fragment: str) -> None:
    _, failures = check(github_token=None, github_app=app)
    assert fragment in " ".join(failures["github_app"])


def test_a_non_rsa_key_fails(ec_pem: str) -> None:
    app = {"client_id": "Iv1", "installation_id": 7, "private_key": ec_pem}
    _, failures = check(github_token=None, github_app=app)
    assert "not an RSA key" in failures["github_app"][0]


def test_failures_never_quote_the_private_key(rsa_pem: str) -> None:
    broken = rsa_pem.replace("A", "*", 5)
    app = {"client_id": "Iv1", "installation_id": 7, "private_key": broken}
    _, failures = check(github_token=None, github_app=app)
    body = broken.splitlines()[1]
    assert failures["github_app"]
    assert all(body not in reason for reason in failures["github_app"])


def test_an_empty_token_fails() -> None:
    _, failures = check(github_token="  ")
    assert "non-empty" in failures["github_token"][0]


def test_secret_wrapped_values_are_read_as_plain() -> None:
    inputs, failures = check(github_token=rpc.wrap_rpc_secret("ghp_wrapped"))
    assert failures == {}
    assert inputs["github_token"] == "ghp_wrapped"


def test_unknown_values_at_preview_are_not_validated() -> None:
    unknown = Unknown()
    inputs, failures = check(
        github_config_url=unknown,
        name=unknown,
        labels=[unknown, "gpu"],
        github_token=unknown,
    )
    assert failures == {}
    assert inputs["name"] is unknown
    assert inputs["labels"] == [unknown, "gpu"]


def test_unknown_app_fields_skip_the_key_check(rsa_pem: str) -> None:
    app = {"client_id": Unknown(), "installation_id": 7, "private_key": rsa_pem}
    _, failures = check(github_token=None, github_app=app)
    assert failures == {}
