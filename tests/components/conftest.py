"""Fixtures of the component tests: fresh Pulumi mocks per test and a listener factory."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gha_scalesets.components import ScaleSetListener
from gha_scalesets.listener.config import ListenerSettings
from tests.support import keys
from tests.support.components import OUTPUTS, listener_args
from tests.support.pulumi_mocks import Recorder, run


@pytest.fixture(autouse=True)
def _pulumi_ready(pulumi_event_loop: asyncio.AbstractEventLoop) -> None:
    """Every test here runs a Pulumi program under mocks."""


@pytest.fixture
def recorder() -> Recorder:
    return Recorder().install()


@pytest.fixture
def deploy(recorder: Recorder) -> Callable[..., dict[str, Any]]:
    """Declare a listener named ``ci`` under the mocks; returns its resolved outputs."""

    def make(runtime: str, **overrides: Any) -> dict[str, Any]:
        def build() -> dict[str, Any]:
            listener = ScaleSetListener("ci", listener_args(runtime, **overrides))
            return {key: getattr(listener, key) for key in OUTPUTS}

        return run(build)

    return make


@pytest.fixture
def settings_from_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ListenerSettings]]:
    """Parse ``LISTENER_*`` variables exactly as the listener does at start-up."""
    for key in [k for k in os.environ if k.startswith("LISTENER_")]:
        monkeypatch.delenv(key)

    def parse(env: dict[str, str]) -> ListenerSettings:
        with monkeypatch.context() as m:
            for key, value in env.items():
                m.setenv(key, value)
            return ListenerSettings()  # type: ignore[call-arg]

    yield parse


@pytest.fixture(scope="session")
def rsa_pem() -> str:
    """A GitHub App private key (RSA, PEM)."""
    return keys.rsa_pem()
