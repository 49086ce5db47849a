"""The simulator in the caller's event loop, reached over ``httpx.ASGITransport`` (no socket).

For replays in virtual time (:mod:`simulator.virtual_time`): the app, its timers and every
client share one loop, so a long poll or a job's run takes no wall time. Clients get the
same HTTP API as from :class:`~simulator.testing.SimulatorServer`; ``queue`` puts jobs on the
board directly (the control API's ``POST /_sim/jobs``, minus the HTTP).

    async with InProcessSimulator(SimulatorConfig(pats=("ghp_x",)), epoch=START) as sim:
        client = Client(sim.config_url("acme"), PatCredentials("ghp_x"), http=sim.http())
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

import httpx

from gha_scalesets.simulator.app import Simulator, create_app
from gha_scalesets.simulator.clock import Clock
from gha_scalesets.simulator.config import SimulatorConfig
from gha_scalesets.simulator.model import Job

BASE_URL = "http://simulator.invalid"


class InProcessSimulator:
    """One simulator whose clock is ``epoch`` + the running loop's time (virtual or not)."""

    def __init__(self, config: SimulatorConfig, *, epoch: float) -> None:
        loop = asyncio.get_running_loop()
        self.clock = Clock(source=lambda: epoch + loop.time())
        self.app = create_app(config, self.clock)
        self.sim: Simulator = self.app.state.sim
        self._timers: asyncio.Task[None] | None = None
        self._clients: list[httpx.AsyncClient] = []

    async def __aenter__(self) -> Self:
        self._timers = asyncio.create_task(self.sim.timers.run(), name="simulator-timers")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.gather(*(client.aclose() for client in self._clients))
        if self._timers is not None:
            self._timers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timers

    def config_url(self, path: str) -> str:
        return f"{BASE_URL}/{path.strip('/')}"

    def http(self) -> httpx.AsyncClient:
        """A client of the app (closed with the simulator); no Accept header, as the listener's."""
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE_URL)
        del client.headers["Accept"]
        self._clients.append(client)
        return client

    def queue(self, labels: list[str], duration: float, repository: str = "acme/app") -> list[Job]:
        """Queue one job now; it is dispatched like one queued over the control API."""
        return self.sim.world.jobs.queue(labels, 1, duration, repository, "succeeded")
