"""The ``ScaleSet`` resource class under ``pulumi.runtime.set_mocks``: what it registers."""

from __future__ import annotations

import asyncio
import base64
import threading
from typing import Any

import dill
import pulumi
import pytest
from pulumi.runtime import mocks, rpc
from pulumi.runtime.sync_await import _sync_await

from gha_scalesets.providers import GitHubAppArgs, ScaleSet, ScaleSetArgs, ScaleSetProvider

TYPE = "pulumi-python:dynamic/github:ScaleSet"


class RecordingMonitor(mocks.MockMonitor):
    """The SDK's mock monitor, also keeping each raw RegisterResource request (options included)."""

    def __init__(self, mock: mocks.Mocks) -> None:
        super().__init__(mock)
        self.requests: dict[str, Any] = {}
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:
        with self._lock:
            self.requests[request.name] = request
        return super().RegisterResource(request)


class FakeScaleSets(mocks.Mocks):
    """Answers registrations the way the provider would: inputs echoed plus computed outputs."""

    def __init__(self) -> None:
        self.inputs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        with self._lock:
            self.inputs[args.name] = args.inputs
        state = dict(args.inputs) | {
            "scale_set_id": 42,
            "runner_group_id": 1,
            "runner_group_name": "Default",
        }
        return args.resource_id or "42", state

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list]:
        return {}, []


@pytest.fixture
def fake(
    pulumi_event_loop: asyncio.AbstractEventLoop,
) -> tuple[FakeScaleSets, RecordingMonitor]:
    mock = FakeScaleSets()
    monitor = RecordingMonitor(mock)
    pulumi.runtime.set_mocks(mock, project="fleet", stack="test", preview=False, monitor=monitor)
    return mock, monitor


def _declare(**overrides: Any) -> ScaleSet:
    args = {
        "github_config_url": "https://github.com/acme",
        "name": "linux-x64",
        "labels": ["linux-x64", "gpu"],
        "disable_update": True,
        "github_token": "ghp_plain_in_program",
    } | overrides
    return ScaleSet("linux", ScaleSetArgs(**args))


def test_registers_a_dynamic_resource_with_provider_property_names(fake) -> None:
    mock, monitor = fake

    @pulumi.runtime.test
    def build() -> pulumi.Output:
        return _declare().id

    build()
    inputs = mock.inputs["linux"]
    assert monitor.requests["linux"].type == TYPE
    assert {k: v for k, v in inputs.items() if k != "__provider"} == {
        "github_config_url": "https://github.com/acme",
        "name": "linux-x64",
        "runner_group": "Default",
        "labels": ["linux-x64", "gpu"],
        "disable_update": True,
        "adopt_existing": False,
        "github_token": rpc.wrap_rpc_secret("ghp_plain_in_program"),
    }


def test_outputs_the_component_reads_resolve(fake) -> None:
    seen: dict[str, Any] = {}

    @pulumi.runtime.test
    def build() -> pulumi.Output:
        ss = _declare()
        return pulumi.Output.all(
            ss.scale_set_id, ss.name, ss.runner_group_name, ss.github_config_url, ss.runner_group_id
        ).apply(lambda values: seen.update(values=values))

    build()
    assert seen["values"] == [42, "linux-x64", "Default", "https://github.com/acme", 1]
    # Numbers cross the wire as floats; the class's annotations turn ids back into ints.
    assert type(seen["values"][0]) is int


def test_credentials_are_secret_inputs_and_secret_outputs(fake, rsa_pem: str) -> None:
    mock, monitor = fake
    outputs: dict[str, pulumi.Output] = {}

    @pulumi.runtime.test
    def build() -> pulumi.Output:
        app = GitHubAppArgs(client_id="Iv1.abc", installation_id=7, private_key=rsa_pem)
        ss = _declare(github_token=None, github_app=app)
        outputs["app"] = ss.github_app  # type: ignore[attr-defined]
        return ss.id

    build()
    assert _sync_await(outputs["app"].is_secret())
    request = monitor.requests["linux"]
    assert set(request.additionalSecretOutputs) == {"github_token", "github_app", "proxy"}
    sent_app = mock.inputs["linux"]["github_app"]
    assert rpc.is_rpc_secret(sent_app)
    assert rpc.unwrap_rpc_secret(sent_app) == {
        "client_id": "Iv1.abc",
        "installation_id": 7,
        "private_key": rsa_pem,
    }


def test_the_proxy_is_a_secret_input_and_the_ca_a_plain_one(fake, private_ca) -> None:
    mock, _ = fake

    @pulumi.runtime.test
    def build() -> pulumi.Output:
        return _declare(proxy="http://u:pw@proxy:3128", ca_bundle=private_ca.ca_pem).id

    build()
    inputs = mock.inputs["linux"]
    assert inputs["proxy"] == rpc.wrap_rpc_secret("http://u:pw@proxy:3128")
    assert inputs["ca_bundle"] == private_ca.ca_pem


def test_the_serialised_provider_is_plain_stateless_and_secret_free(fake) -> None:
    mock, _ = fake

    @pulumi.runtime.test
    def build() -> pulumi.Output:
        return _declare().id

    build()
    serialised = mock.inputs["linux"]["__provider"]
    # Not a secret: serialize_as_secret_always = False and nothing secret is captured.
    assert isinstance(serialised, str)
    provider = dill.loads(base64.b64decode(serialised))  # noqa: S301 (our own pickle)
    assert isinstance(provider, ScaleSetProvider)
    assert vars(provider) == {}
    assert b"ghp_plain_in_program" not in base64.b64decode(serialised)
