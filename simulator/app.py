"""The ASGI application: one :class:`Simulator` (state, clock, faults, counters) behind
Starlette routes.

Route families (see each module's docstring): :mod:`simulator.http_rest` (GitHub REST,
``/api/v3``), :mod:`simulator.http_admin` (Actions admin API under
``/_services/pipelines/{tenant}/``), :mod:`simulator.http_mq` (message queue under
``/_services/broker/``), :mod:`simulator.http_runner` (runner emulator backend) and
:mod:`simulator.http_control` (``/_sim/`` control and observation).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request

from gha_scalesets.simulator import http_admin, http_control, http_mq, http_rest, http_runner
from gha_scalesets.simulator.aio import Timers
from gha_scalesets.simulator.clock import Clock
from gha_scalesets.simulator.config import SimulatorConfig
from gha_scalesets.simulator.faults import FaultInjector
from gha_scalesets.simulator.ledger import SecretLedger
from gha_scalesets.simulator.limits import RateLimits
from gha_scalesets.simulator.world import World

ENDPOINTS = [
    *http_rest.ROUTES,
    *http_admin.ROUTES,
    *http_mq.ROUTES,
    *http_runner.ROUTES,
    *http_control.ROUTES,
]


class Simulator:
    """Everything one running simulator owns; reachable from handlers as ``app.state.sim``."""

    def __init__(self, config: SimulatorConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or Clock()
        self.timers = Timers(self.clock)
        self.github_routes = frozenset(e.key for e in ENDPOINTS if e.kind == "github")
        self.faults = FaultInjector(self.clock, config.seed, self.github_routes)
        self.faults.configure(config.faults)
        self.limits = RateLimits(self.clock)
        self.limits.configure(config.limits)
        self.requests: Counter[str] = Counter()
        self.runner_requests: Counter[str] = Counter()
        # Who called (GitHub and runner routes): User-Agents, and the TCP connections by peer
        # address, so a test can tell how many connections a forward proxy opened for it.
        self.user_agents: Counter[str] = Counter()
        self.peers: set[str] = set()
        self.request_serial = 0
        self._generation = 0
        self.ledger = SecretLedger(config.record_secrets)
        self.world = World(config, self.clock, self.timers, self._generation, self.ledger)

    @staticmethod
    def loop_time() -> float:
        """Monotonic time for long-poll holds (real time; the simulator clock may jump)."""
        return asyncio.get_running_loop().time()

    def reset(self) -> None:
        """A fresh world and counters; tokens issued before no longer work."""
        self.world.close()
        self.timers.clear()
        self.clock.rewind_offset()
        self._generation += 1
        self.world = World(self.config, self.clock, self.timers, self._generation, self.ledger)
        self.requests.clear()
        self.runner_requests.clear()
        self.user_agents.clear()
        self.peers.clear()
        self.faults.configure(self.faults.settings)
        self.limits.reset()

    def observe_caller(self, request: Request) -> None:
        self.user_agents[request.headers.get("user-agent", "")] += 1
        if request.client is not None:
            self.peers.add(f"{request.client.host}:{request.client.port}")

    def stats(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "runner_requests": dict(self.runner_requests),
            "user_agents": dict(self.user_agents),
            "connections": len(self.peers),
            "limits": self.limits.stats(),
            "revoked_credentials": self.world.auth.revoked,
            # When the counts were read (monotonic seconds): request rates over a window.
            "monotonic": self.loop_time(),
            **self.world.stats(),
        }


def create_app(config: SimulatorConfig, clock: Clock | None = None) -> Starlette:
    """Build the ASGI app; its lifespan runs the timer scheduler (serve it with lifespan on)."""
    sim = Simulator(config, clock)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(sim.timers.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = Starlette(routes=[endpoint.route() for endpoint in ENDPOINTS], lifespan=lifespan)
    app.state.sim = sim
    return app
