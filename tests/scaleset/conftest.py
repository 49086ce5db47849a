"""Fixtures of the scaleset client tests: clients wired to the simulator, fast retry policies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gha_scalesets.scaleset import Client, PatCredentials, RetryPolicy, ScaleSet
from gha_scalesets.scaleset.auth import TokenCache
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT

# Stats keys of the simulator (``"<METHOD> <route template>"``).
REGISTRATION_TOKEN = "POST /api/v3/orgs/{org}/actions/runners/registration-token"
RUNNER_REGISTRATION = "POST /api/v3/actions/runner-registration"
ACCESS_TOKENS = "POST /api/v3/app/installations/{id}/access_tokens"
JIT = "POST /_apis/runtime/runnerscalesets/{id}/generatejitconfig"
GET_SCALE_SET = "GET /_apis/runtime/runnerscalesets/{id}"
GET_MESSAGE = "GET /message"
REFRESH_SESSION = "PATCH /_apis/runtime/runnerscalesets/{id}/sessions/{session_id}"

ClientFactory = Callable[..., Client]


def requests(sim: SimulatorServer, key: str) -> int:
    """How many GitHub-facing requests the simulator served on one route."""
    return int(sim.stats()["requests"].get(key, 0))


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def token_expired(token: str) -> bool:
    """Whether a simulator-issued JWT is past its ``exp`` (the simulator clock is not advanced)."""
    return time.time() >= jwt.decode(token, options={"verify_signature": False})["exp"]


class SleepRecorder:
    """A RetryPolicy ``sleep`` that records waits instead of sleeping; ``hook`` runs first."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.hook: Callable[[float], Awaitable[None]] | None = None

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.hook is not None:
            await self.hook(seconds)
        await asyncio.sleep(0)


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
    clients: list[Client] = []

    def make(**options: Any) -> Client:
        server = options.pop("server", sim)
        url = options.pop("url", None) or server.config_url(options.pop("path", "acme"))
        credentials = options.pop("credentials", PatCredentials(SIM_PAT))
        options.setdefault("retry", fast_retry)
        options.setdefault("token_cache", TokenCache())
        client = Client(url, credentials, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def client(make_client: ClientFactory) -> Client:
    return make_client()


@pytest.fixture
async def scale_set(client: Client) -> ScaleSet:
    return await client.create_scale_set(name="linux-x64", runner_group_id=1)


@pytest.fixture(scope="session")
def rsa_pem() -> str:
    """A throwaway RSA key the simulator does not know."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
