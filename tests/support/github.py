"""GitHub's side on the simulator: scale sets, request counts by route, clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import jwt

from gha_scalesets.scaleset import Client, PatCredentials, ScaleSet, SyncClient
from gha_scalesets.scaleset.auth import TokenCache
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.sim import SIM_PAT

ORG = "acme"
# Stats keys of the simulator (``"<METHOD> <route template>"``).
REGISTRATION_TOKEN = "POST /api/v3/orgs/{org}/actions/runners/registration-token"
RUNNER_REGISTRATION = "POST /api/v3/actions/runner-registration"
ACCESS_TOKENS = "POST /api/v3/app/installations/{id}/access_tokens"
JIT = "POST /_apis/runtime/runnerscalesets/{id}/generatejitconfig"
GET_SCALE_SET = "GET /_apis/runtime/runnerscalesets/{id}"
GET_MESSAGE = "GET /message"
REFRESH_SESSION = "PATCH /_apis/runtime/runnerscalesets/{id}/sessions/{session_id}"

ClientFactory = Callable[..., Client]


async def create_scale_sets(
    sim: SimulatorServer,
    names: Sequence[str],
    pat: str = SIM_PAT,
    *,
    token_cache: TokenCache | None = None,
    concurrency: int = 32,
) -> list[ScaleSet]:
    """Scale sets in the Default group of ``ORG`` (created with ``pat``, ``concurrency`` at a
    time), in the order of ``names``. Without ``token_cache`` the client shares the process's
    default cache, as a listener in this process does."""
    gate = asyncio.Semaphore(concurrency)
    credentials = PatCredentials(pat)
    async with Client(sim.config_url(ORG), credentials, token_cache=token_cache) as c:
        group = await c.get_runner_group_by_name("Default")

        async def one(name: str) -> ScaleSet:
            async with gate:
                return await c.create_scale_set(name=name, runner_group_id=group.id)

        return list(await asyncio.gather(*(one(name) for name in names)))


async def create_scale_set(
    sim: SimulatorServer, name: str, pat: str = SIM_PAT, *, token_cache: TokenCache | None = None
) -> ScaleSet:
    """A scale set in the Default group of ``ORG``, created with ``pat``."""
    [created] = await create_scale_sets(sim, [name], pat, token_cache=token_cache)
    return created


def jobs_done(sim: SimulatorServer, count: int) -> Callable[[], Awaitable[bool]]:
    """A condition: ``count`` jobs completed on ``sim``."""

    async def check() -> bool:
        stats = await asyncio.to_thread(sim.stats)
        return stats["jobs"]["completed"] >= count

    return check


def requests(sim: SimulatorServer, key: str) -> int:
    """How many GitHub-facing requests the simulator served on one route."""
    return int(sim.stats()["requests"].get(key, 0))


def token_expired(token: str) -> bool:
    """Whether a simulator-issued JWT is past its ``exp`` (the simulator clock is not advanced)."""
    return time.time() >= jwt.decode(token, options={"verify_signature": False})["exp"]


def github_client(sim: SimulatorServer, org: str = ORG) -> SyncClient:
    """A client acting "on GitHub", outside Pulumi (another person, the UI, a script)."""
    return SyncClient(sim.config_url(org), PatCredentials(SIM_PAT), token_cache=TokenCache())


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
