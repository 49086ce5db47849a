"""An upstream-equivalent listener: actions/scaleset v0.4.0 as the protocol reference describes it.

A model, driven through our own :class:`~scaleset.Client` (same HTTP, same wire) but with the
upstream behaviour imposed from outside:

- one listener per scale set, each with its own client and a fresh token cache: nothing is
  shared between scale sets, so every listener runs its own auth chain (reference §2.5, ARC
  runs one listener pod per scale set);
- a global mutex per client: at most one admin request in flight, and one on the session
  client (GET/DELETE message, acquire) (§5.6, scaleset#104);
- no read caches, no batching: one ``generatejitconfig`` per runner, serially (§4.3, §7);
- no pacing: requests go out as fast as the mutex allows, and only a 429's ``Retry-After`` is
  waited out by the request that received it (go-retryablehttp, §5.2, §5.4);
- the §6.1 loop: GET message; on a message ack it first, then acquire ``JobAvailable`` jobs,
  then handle job events and the desired count; on 202 re-assert the desired count. The
  message is handled to the end (scale-up included) before the next GET;
- the docker example's scaler: ``target = min(max, min + totalAssignedJobs)``, start
  ``target - current`` runners one after the other (JIT, then launch), forget a runner on its
  ``JobCompleted``; never scale down on the count.

An admin-token refresh upstream re-runs the whole chain (App JWT -> installation token ->
registration token -> runner-registration); a cold token cache costs exactly that, which is
how the idle scenario prices upstream refreshes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from gha_scalesets.listener.runtimes.base import RunnerSpec, Runtime
from gha_scalesets.scaleset import (
    Client,
    Credentials,
    JobAvailable,
    JobCompleted,
    MessageSession,
)
from gha_scalesets.scaleset.auth import TokenCache
from gha_scalesets.scaleset.pacing import PacingSettings


class UpstreamListener:
    """One upstream-style listener process serving one scale set."""

    def __init__(
        self,
        config_url: str,
        credentials: Credentials,
        *,
        scale_set_id: int,
        scale_set_name: str,
        max_runners: int,
        runtime: Runtime,
        min_runners: int = 0,
        owner: str = "upstream-listener",
        on_message: Callable[[float], None] | None = None,
    ) -> None:
        # Upstream paces nothing: it only waits out a 429's Retry-After (go-retryablehttp).
        self.client = Client(
            config_url,
            credentials,
            token_cache=TokenCache(),
            pacing=PacingSettings(enabled=False),
        )
        self._ss_id = scale_set_id
        self._ss_name = scale_set_name
        self._min = min_runners
        self._max = max_runners
        self._runtime = runtime
        self._owner = owner
        self._on_message = on_message
        self._admin_mutex = asyncio.Lock()  # the parent client's global mutex
        self._session_mutex = asyncio.Lock()  # the session client's own mutex
        self._runners: set[str] = set()
        self._sequence = 0
        self.session: MessageSession | None = None

    async def start(self) -> None:
        async with self._admin_mutex:
            self.session = await self.client.create_message_session(self._ss_id, self._owner)
        stats = self.session.statistics
        if stats is None:
            raise RuntimeError("the session carries no statistics (upstream refuses to start)")
        await self._handle_desired(stats.total_assigned_jobs)

    async def run(self) -> None:
        """The listener loop until cancelled."""
        assert self.session is not None
        session = self.session
        last_id = 0
        assigned = session.statistics.total_assigned_jobs if session.statistics else 0
        while True:
            async with self._session_mutex:
                message = await self.client.get_message(session, last_id, self._max)
            if message is None:
                await self._handle_desired(assigned)
                continue
            if self._on_message is not None:
                self._on_message(time.monotonic())
            last_id = message.message_id
            async with self._session_mutex:
                await self.client.delete_message(session, message.message_id)
            available = [j.runner_request_id for j in message.jobs if isinstance(j, JobAvailable)]
            if available:
                async with self._session_mutex:
                    await self.client.acquire_jobs(session, self._ss_id, available)
            for job in message.jobs:
                if isinstance(job, JobCompleted) and job.runner_name:
                    self._runners.discard(job.runner_name)
            if message.statistics is not None:
                assigned = message.statistics.total_assigned_jobs
            await self._handle_desired(assigned)

    async def _handle_desired(self, assigned: int) -> None:
        target = min(self._max, self._min + assigned)
        for _ in range(max(0, target - len(self._runners))):
            self._sequence += 1
            name = f"{self._ss_name}-{self._sequence}"
            async with self._admin_mutex:
                jit = await self.client.generate_jit_config(self._ss_id, name)
            assert jit.runner is not None and jit.config is not None
            spec = RunnerSpec(self._ss_id, self._ss_name, name, jit.runner.id, jit.config)
            await self._runtime.launch([spec])
            self._runners.add(name)

    async def close(self) -> None:
        if self.session is not None:
            async with self._admin_mutex:
                await self.client.delete_message_session(self.session)
            self.session = None
        await self.client.aclose()


@contextlib.asynccontextmanager
async def serving(upstream: UpstreamListener, runtime: Runtime) -> AsyncIterator[UpstreamListener]:
    """``upstream`` started and looping; afterwards stopped, session deleted, runtime closed."""
    await upstream.start()
    loop = asyncio.create_task(upstream.run())
    try:
        yield upstream
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        await upstream.close()
        await runtime.close()
