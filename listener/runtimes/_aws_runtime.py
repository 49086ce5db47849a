"""What the EC2 and ECS runtimes share: counted clients, retries and the state-event stream."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import structlog
from botocore.client import BaseClient

from gha_scalesets.listener.aws import AWS_ERRORS, call, error_code, is_transient, make_client
from gha_scalesets.listener.config import (
    ApiRateLimit,
    AwsConfig,
    Ec2RuntimeConfig,
    EcsRuntimeConfig,
)
from gha_scalesets.listener.retries import default_retry
from gha_scalesets.listener.runtimes._launch import bounded_map, launch_batches
from gha_scalesets.listener.runtimes._pacing import ApiLimit, Pacer, Rate
from gha_scalesets.listener.runtimes._phases import PhaseTracker
from gha_scalesets.listener.runtimes._ssm import JitParameters
from gha_scalesets.listener.runtimes.aws_events import EventQueue
from gha_scalesets.listener.runtimes.base import (
    LaunchResult,
    RunnerSpec,
    RuntimeEvent,
    RuntimeRunner,
    sweep_cutoff,
)
from gha_scalesets.scaleset.retry import RetryPolicy

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Owner:
    """Whose runner an instance or task is, learned at launch or reconciliation."""

    runner_name: str
    scale_set_id: int
    seen_at: float  # clock time it was learned


ConfigT = TypeVar("ConfigT", Ec2RuntimeConfig, EcsRuntimeConfig)


def _limit(configured: ApiRateLimit) -> ApiLimit:
    resources = (
        Rate(configured.resource_burst, configured.resource_per_second)
        if configured.resource_burst is not None and configured.resource_per_second is not None
        else None
    )
    return ApiLimit(Rate(configured.burst, configured.per_second), resources)


def batches(runners: Sequence[RunnerSpec], size: int, *, spread: int = 1) -> list[list[int]]:
    """Indexes of ``runners`` in launch batches: one scale set per batch (its tags go on the
    whole batch), at most ``size`` runners each and, when there are enough runners, at least
    ``spread`` batches per scale set (one per subnet, so a burst spreads across zones)."""
    by_scale_set: dict[int, list[int]] = {}
    for index, spec in enumerate(runners):
        by_scale_set.setdefault(spec.scale_set_id, []).append(index)
    out: list[list[int]] = []
    for indexes in by_scale_set.values():
        count = max(math.ceil(len(indexes) / size), min(spread, len(indexes)))
        out.extend(indexes[k::count] for k in range(count))
    return out


class AwsRuntime(Generic[ConfigT]):
    """Base of the EC2 and ECS runtimes.

    ``api_calls`` counts every AWS request by ``service:Operation``; ``launch_errors`` counts
    failed launch attempts by error code (throttling included); ``terminate_errors`` the
    failures of terminate calls; ``event_stats`` the queue messages ``received`` and
    ``malformed``. State changes come only from the EventBridge-fed queue. ``pacer`` (default:
    AWS's documented limits of what the runtime calls, with ``api_rate_limits`` over them)
    paces the launch, terminate and JIT-parameter calls.
    """

    name: str  # also the boto3 name of the service that runs the runners

    def __init__(
        self,
        config: ConfigT,
        aws: AwsConfig,
        *,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        pacer: Pacer | None = None,
    ) -> None:
        self.api_calls: Counter[str] = Counter()
        self.launch_errors: Counter[str] = Counter()
        self.terminate_errors: Counter[str] = Counter()
        self._config: ConfigT = config
        self._aws = aws
        self._max_connections = config.launch_concurrency + 2
        self._retry = retry or default_retry()
        self._clock = clock
        configured = {op: _limit(limit) for op, limit in config.api_rate_limits.items()}
        self.pacer = pacer or Pacer(self._documented_limits() | configured)
        self._closed = asyncio.Event()
        self._clients: list[BaseClient] = []
        self._tracker = PhaseTracker()
        self._known: dict[str, Owner] = {}  # provider id -> owner
        self._queue = (
            EventQueue(
                self._client("sqs"),
                config.events_queue_url,
                self._retry,
                wait_seconds=config.events_wait_seconds,
            )
            if config.events_queue_url
            else None
        )
        self.event_stats: Counter[str] = self._queue.stats if self._queue else Counter()
        self._api = self._client(self.name)
        self._params = JitParameters(
            self._client("ssm"), config.ssm_prefix, config.kms_key_id, self._retry, self.pacer
        )

    def _documented_limits(self) -> dict[str, ApiLimit]:
        """AWS's default limits of what this runtime calls (``aws_limits``)."""
        raise NotImplementedError

    def _client(self, service: str) -> BaseClient:
        client = make_client(
            service, self._aws, self.api_calls, max_connections=self._max_connections
        )
        self._clients.append(client)
        return client

    def _param_key(self, provider_id: str, runner_name: str) -> str:
        """What names a runner's JIT parameter within its scale set."""
        raise NotImplementedError

    async def _pages(
        self, operation: str, token_key: str, **params: Any
    ) -> AsyncIterator[Mapping[str, Any]]:
        """Every page of a paginated call, following the ``token_key`` continuation."""
        token: str | None = None
        while True:
            more: dict[str, Any] = {token_key: token} if token else {}
            page = await call(self._api, operation, self._retry, **params, **more)
            yield page
            token = page.get(token_key)
            if not token:
                return

    async def _launch_batches(
        self,
        runners: Sequence[RunnerSpec],
        groups: Sequence[Sequence[int]],
        launch: Callable[[int, list[RunnerSpec]], Awaitable[list[LaunchResult]]],
    ) -> list[LaunchResult]:
        return await launch_batches(
            runners, groups, self._config.launch_concurrency, launch, self.launch_errors
        )

    async def _hand_over(
        self,
        launched: Sequence[tuple[RunnerSpec, str]],
        tags: Callable[[RunnerSpec, str], dict[str, str]],
    ) -> list[LaunchResult]:
        """Store the JIT config of each launched (runner, provider id) in its parameter,
        tagged with ``tags(runner, provider id)``. A runner whose config cannot be stored is
        useless: it is stopped (one call for all of them) and its launch reported failed."""

        async def store(item: tuple[RunnerSpec, str]) -> LaunchResult:
            spec, provider_id = item
            name = self._params.name(
                spec.scale_set_id, self._param_key(provider_id, spec.runner_name)
            )
            try:
                await self._params.put(
                    name, spec.jit_config, tags(spec, provider_id), self.launch_errors
                )
            except AWS_ERRORS as exc:
                code = error_code(exc)
                log.warning("could not store the JIT config", runner=spec.runner_name, error=code)
                return LaunchResult(
                    spec.runner_name,
                    # The code only: a validation message may quote the value.
                    error=f"could not store the JIT config in SSM: {code}",
                    retryable=is_transient(code),
                )
            self._remember(provider_id, spec.runner_name, spec.scale_set_id)
            return LaunchResult(spec.runner_name, provider_id=provider_id)

        results = await bounded_map(launched, self._config.launch_concurrency, store)
        useless = [pid for (_, pid), r in zip(launched, results, strict=True) if r.error]
        if useless:
            await self._discard(useless)
        return results

    async def _discard(self, provider_ids: Sequence[str]) -> None:
        """Stop runners that never got their JIT config (nothing else refers to them)."""
        raise NotImplementedError

    async def _release(self, provider_ids: Sequence[str]) -> None:
        """Forget terminated runners and delete their JIT parameters."""
        owners = {i: self._known.pop(i) for i in provider_ids if i in self._known}
        await self._params.delete(
            self._params.name(o.scale_set_id, self._param_key(i, o.runner_name))
            for i, o in owners.items()
        )

    async def events(self) -> AsyncIterator[RuntimeEvent]:
        """State changes from the events queue, each provider id moving only forward."""
        if self._queue is None:
            log.warning(
                "no events queue configured",
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

    def _with_owner(self, event: RuntimeEvent) -> RuntimeEvent:
        """``event`` with the runner this process launched; one of a runner it does not know
        (launched before a restart) goes on without: the listener looks it up by id."""
        owner = self._known.get(event.provider_id)
        if owner is None or event.runner_name:
            return event
        return replace(event, runner_name=owner.runner_name, scale_set_id=owner.scale_set_id)

    def _runner_name(self, provider_id: str, tags: Mapping[str, str], tag: str) -> str:
        """Whose an instance or task is: its runner tag (earlier versions launched one runner
        per call and tagged it), or what this process learned at launch; "" when neither knows
        (reconciliation then matches it to the registry by its id)."""
        owner = self._known.get(provider_id)
        return tags.get(tag) or (owner.runner_name if owner else "")

    def _remember(self, provider_id: str, runner_name: str, scale_set_id: int) -> None:
        self._known[provider_id] = Owner(runner_name, scale_set_id, self._clock())

    def _adopt(self, provider_id: str, runner_name: str, scale_set_id: int) -> None:
        """Remember the owner a listing shows for a runner this process does not know."""
        if runner_name and provider_id not in self._known:
            self._remember(provider_id, runner_name, scale_set_id)

    async def _reconciled(
        self, scale_set_id: int, runners: Sequence[RuntimeRunner], listed_at: float
    ) -> None:
        """After a listing started at ``listed_at``: drop cached owners of the scale set's
        runners it no longer shows (launches that finished during the listing stay), then
        sweep JIT parameters that no listed runner will read and that were last written a
        grace period before the listing (:func:`~listener.runtimes.base.sweep_cutoff`)."""
        present = {r.provider_id for r in runners}
        for provider_id, owner in list(self._known.items()):
            if (
                owner.scale_set_id == scale_set_id
                and owner.seen_at < listed_at
                and provider_id not in present
            ):
                del self._known[provider_id]
        await self._params.sweep(
            scale_set_id,
            {self._param_key(r.provider_id, r.runner_name) for r in runners},
            sweep_cutoff(listed_at),
        )

    async def close(self) -> None:
        """End ``events()`` and close the HTTP pools."""
        self._closed.set()
        for client in self._clients:
            client.close()
