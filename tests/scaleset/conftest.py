"""Fixtures of the scaleset client tests: clients wired to the simulator, fast retry policies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gha_scalesets.scaleset import Client, PatCredentials, RetryPolicy, ScaleSet
from gha_scalesets.scaleset.auth import TokenCache
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT
from tests.support import keys
from tests.support.factories import closing_factory
from tests.support.github import ClientFactory, SleepRecorder


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def fast_retry(sleeps: SleepRecorder) -> RetryPolicy:
    """Upstream's attempt count with recorded (not slept) waits."""
    return RetryPolicy(max_attempts=5, seed=1, sleep=sleeps)


@pytest.fixture
def patient_retry(sleeps: SleepRecorder) -> RetryPolicy:
    """For random fault rates: 10 attempts make an unlucky streak (0.3**10) negligible."""
    return RetryPolicy(max_attempts=10, seed=1, sleep=sleeps)


@pytest.fixture
async def make_client(
    sim: SimulatorServer, fast_retry: RetryPolicy
) -> AsyncIterator[ClientFactory]:
    """Build Clients on the ``sim`` org ``acme`` with a private token cache; closed at the end."""

    def build(**options: Any) -> Client:
        server = options.pop("server", sim)
        url = options.pop("url", None) or server.config_url(options.pop("path", "acme"))
        credentials = options.pop("credentials", PatCredentials(SIM_PAT))
        options.setdefault("retry", fast_retry)
        options.setdefault("token_cache", TokenCache())
        return Client(url, credentials, **options)

    async with closing_factory(build, Client.aclose) as make:
        yield make


@pytest.fixture
async def client(make_client: ClientFactory) -> Client:
    return make_client()


@pytest.fixture
async def scale_set(client: Client) -> ScaleSet:
    return await client.create_scale_set(name="linux-x64", runner_group_id=1)


@pytest.fixture(scope="session")
def rsa_pem() -> str:
    """A throwaway RSA key the simulator does not know."""
    return keys.rsa_pem()
