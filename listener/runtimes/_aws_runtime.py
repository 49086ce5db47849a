"""What the EC2 and ECS runtimes share: counted clients, retries and the state-event stream."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from botocore.client import BaseClient

from listener.config import AwsConfig
from listener.runtimes._aws import make_client
from listener.runtimes._phases import PhaseTracker
from listener.runtimes._retry import default_retry
from listener.runtimes.aws_events import EventQueue
from listener.runtimes.base import RuntimeEvent
from scaleset.retry import RetryPolicy

log = structlog.get_logger(__name__)

# A JIT parameter younger than this may belong to a launch whose instance or task the
# (eventually consistent) reconciliation listing does not show yet: never swept.
SWEEP_GRACE_SECONDS = 300.0


@dataclass(frozen=True)
class Owner:
    """Whose runner an instance or task is, learned at launch or reconciliation."""

    runner_name: str
    scale_set_id: int
    seen_at: float  # clock time it was learned


class AwsRuntime:
    """Base of the EC2 and ECS runtimes.

    ``api_calls`` counts every AWS request by ``service:Operation``; ``launch_errors`` counts
    failed launch attempts by error code (throttling included); ``terminate_errors`` the
    failures of terminate calls; ``event_stats`` the queue messages ``received`` and
    ``malformed``. State changes come only from the EventBridge-fed queue.
    """

    name: str

    def __init__(
        self,
        aws: AwsConfig,
        *,
        events_queue_url: str | None,
        events_wait_seconds: int,
        max_connections: int,
        retry: RetryPolicy | None,
        clock: Callable[[], float],
    ) -> None:
        self.api_calls: Counter[str] = Counter()
        self.launch_errors: Counter[str] = Counter()
        self.terminate_errors: Counter[str] = Counter()
        self._aws = aws
        self._max_connections = max_connections
        self._retry = retry or default_retry()
        self._clock = clock
        self._closed = asyncio.Event()
        self._clients: list[BaseClient] = []
        self._tracker = PhaseTracker()
        self._known: dict[str, Owner] = {}  # provider id -> owner
        self._queue = (
            EventQueue(
                self._client("sqs"),
                events_queue_url,
                self._retry,
                wait_seconds=events_wait_seconds,
            )
            if events_queue_url
            else None
        )
        self.event_stats: Counter[str] = self._queue.stats if self._queue else Counter()

    def _client(self, service: str) -> BaseClient:
        client = make_client(
            service, self._aws, self.api_calls, max_connections=self._max_connections
        )
        self._clients.append(client)
        return client

    def _sweep_cutoff(self) -> datetime:
        """JIT parameters last written before this may be swept."""
        return datetime.fromtimestamp(self._clock() - SWEEP_GRACE_SECONDS, UTC)

    async def events(self) -> AsyncIterator[RuntimeEvent]:
        """State changes from the events queue, each provider id moving only forward."""
        if self._queue is None:
            log.warning(
                "no_events_queue",
                runtime=self.name,
                hint="set events_queue_url: without it runner ends are seen only by reconciliation",
            )
            await self._closed.wait()
            return
        async for raw in self._queue.drain(self._closed):
            event = self._parse(raw)
            if event is not None and self._tracker.advance(event.provider_id, event.phase):
                yield event

    def _parse(self, raw: Mapping[str, Any]) -> RuntimeEvent | None:
        raise NotImplementedError

    def _remember(self, provider_id: str, runner_name: str, scale_set_id: int) -> None:
        self._known[provider_id] = Owner(runner_name, scale_set_id, self._clock())

    def _forget_missing(self, scale_set_id: int, present: set[str], listed_at: float) -> None:
        """Drop cached owners of a scale set's runners that a listing started at ``listed_at``
        no longer shows (launches that finished during the listing stay)."""
        for provider_id, owner in list(self._known.items()):
            if (
                owner.scale_set_id == scale_set_id
                and owner.seen_at < listed_at
                and provider_id not in present
            ):
                del self._known[provider_id]

    async def close(self) -> None:
        """End ``events()`` and close the HTTP pools."""
        self._closed.set()
        for client in self._clients:
            client.close()
