"""Drive a dynamic provider exactly as the Pulumi engine does, without the Pulumi CLI.

The engine starts ``python -m pulumi.dynamic`` (the SDK's dynamic-provider host), reads the gRPC
port from its first stdout line and calls ``ResourceProvider`` methods with protobuf requests in
which every resource carries the dill-pickled provider under ``__provider``. This module does the
same from a test: the host is a separate, fresh process that unpickles the provider.

Secrets: the host answers ``Configure`` with ``acceptSecrets: false``, so the engine sends secret
values to it as plain values and re-marks them secret itself; ``Host`` sends them the same way
unless ``wrap_secrets`` is set (as an engine talking to a secret-aware provider would).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2 as pb
from pulumi.runtime.proto.provider_pb2_grpc import ResourceProviderStub

from gha_scalesets.providers import ScaleSetProvider
from gha_scalesets.providers import props as p
from tests.fixtures.secret_scan import observe

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TYPE = "pulumi-python:dynamic/github:ScaleSet"
UNKNOWN = rpc.UNKNOWN
"""What the engine sends for a value not known at preview."""
DIFF_NONE = pb.DiffResponse.DIFF_NONE
DIFF_SOME = pb.DiffResponse.DIFF_SOME

_START_TIMEOUT = 30.0
_CALL_TIMEOUT = 60.0

# What the state of every ScaleSet names as its provider: a module of the namespace, a class.
PROVIDER_REFERENCE = ("gha_scalesets.providers.scale_set_provider", "ScaleSetProvider")


def _struct(props: dict[str, Any]) -> struct_pb2.Struct:
    # A private loop, as the SDK's host does: asyncio.run would unset the thread's current loop.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(props, {}))
    finally:
        loop.close()


def _props(struct: struct_pb2.Struct) -> dict[str, Any]:
    return rpc.deserialize_properties(struct, True)


def _unmarked(value: Any) -> Any:
    """``value`` with every secret-wrapped part replaced: what state shows in plain text."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return "[secret]"
        return {key: _unmarked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unmarked(item) for item in value]
    return value


def _outputs(struct: struct_pb2.Struct) -> dict[str, Any]:
    """The outputs of a response; what state would hold in plain text goes to the suite's
    secret scan (the resource marks the secret keys: additional_secret_outputs)."""
    outputs = MessageToDict(struct)
    plain = {k: v for k, v in outputs.items() if k not in p.SECRET_KEYS}
    observe("provider outputs not marked secret", json.dumps(_unmarked(plain)))
    return _props(struct)


@dataclass
class Diff:
    changes: int
    replaces: list[str]
    stables: list[str]
    delete_before_replace: bool


class Host:
    """One ``python -m pulumi.dynamic`` process and a stub talking to it."""

    def __init__(self, *, wrap_secrets: bool = False) -> None:
        env = os.environ | {"PYTHONPATH": str(PROJECT_ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pulumi.dynamic"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        port = self.process.stdout.readline().decode().strip()
        if not port.isdigit():
            self.process.kill()
            raise RuntimeError(
                f"dynamic provider host did not start: {self.process.stderr.read()!r}"
            )
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(self.channel).result(timeout=_START_TIMEOUT)
        self.stub = ResourceProviderStub(self.channel)
        self.provider = serialize_provider(ScaleSetProvider())
        self.wrap_secrets = wrap_secrets
        self.accept_secrets = self.stub.Configure(
            pb.ConfigureRequest(acceptSecrets=True, acceptResources=True), timeout=_CALL_TIMEOUT
        ).acceptSecrets

    def close(self) -> None:
        self.channel.close()
        self.process.kill()
        self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def urn(self, name: str) -> str:
        return f"urn:pulumi:test::fleet::{TYPE}::{name}"

    def _resource(self, name: str, id_: str | None = None) -> dict[str, str]:
        """The fields every request names its resource with (and its id, once it has one)."""
        fields = {"urn": self.urn(name), "name": name, "type": TYPE}
        return fields if id_ is None else {**fields, "id": id_}

    def _request_props(
        self, props: dict[str, Any] | None, *, with_provider: bool = True
    ) -> struct_pb2.Struct:
        props = dict(props or {})
        if self.wrap_secrets:
            for key in p.SECRET_KEYS:
                if key in props:
                    props[key] = rpc.wrap_rpc_secret(props[key])
        if with_provider:
            props["__provider"] = self.provider
        return _struct(props)

    def check(self, name: str, news: dict[str, Any], olds: dict[str, Any] | None = None):
        """Returns (checked inputs, {property: [reasons]})."""
        response = self.stub.Check(
            pb.CheckRequest(
                **self._resource(name),
                olds=self._request_props(olds, with_provider=olds is not None),
                news=self._request_props(news),
            ),
            timeout=_CALL_TIMEOUT,
        )
        failures: dict[str, list[str]] = {}
        for failure in response.failures:
            failures.setdefault(failure.property, []).append(failure.reason)
        return _props(response.inputs), failures

    def diff(self, name: str, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> Diff:
        response = self.stub.Diff(
            pb.DiffRequest(
                **self._resource(name, id_),
                olds=self._request_props(olds),
                news=self._request_props(news),
            ),
            timeout=_CALL_TIMEOUT,
        )
        return Diff(
            response.changes,
            list(response.replaces),
            list(response.stables),
            response.deleteBeforeReplace,
        )

    def create(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        response = self.stub.Create(
            pb.CreateRequest(**self._resource(name), properties=self._request_props(inputs)),
            timeout=_CALL_TIMEOUT,
        )
        return response.id, _outputs(response.properties)

    def read(
        self,
        name: str,
        id_: str,
        properties: dict[str, Any] | None,
        inputs: dict[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """A refresh: the old outputs as ``properties``, the old inputs as ``inputs``.

        Returns the id, the outputs and the inputs the provider says would declare them.
        """
        response = self.stub.Read(
            pb.ReadRequest(
                **self._resource(name, id_),
                properties=self._request_props(properties, with_provider=properties is not None),
                inputs=self._request_props(inputs, with_provider=inputs is not None),
            ),
            timeout=_CALL_TIMEOUT,
        )
        return response.id, _outputs(response.properties), _props(response.inputs)

    def update(
        self, name: str, id_: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> dict[str, Any]:
        response = self.stub.Update(
            pb.UpdateRequest(
                **self._resource(name, id_),
                olds=self._request_props(olds),
                news=self._request_props(news),
            ),
            timeout=_CALL_TIMEOUT,
        )
        return _outputs(response.properties)

    def delete(self, name: str, id_: str, properties: dict[str, Any]) -> None:
        self.stub.Delete(
            pb.DeleteRequest(
                **self._resource(name, id_),
                properties=self._request_props(properties),
            ),
            timeout=_CALL_TIMEOUT,
        )


def without_provider(props: dict[str, Any]) -> dict[str, Any]:
    """Properties as a user sees them in state (the pickled provider left out)."""
    return {k: v for k, v in props.items() if k != "__provider"}
