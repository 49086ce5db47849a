"""The listener process: one client, registry, runtime and metrics endpoint for all its scale sets.

``Listener`` wires the parts together; one :class:`~listener.worker.ScaleSetWorker` task per
scale set holds its session; one task routes runtime events to the scale set they belong to.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import Counter
from collections.abc import Callable

import structlog

from gha_scalesets.listener.cloudwatch import CloudWatchPublisher
from gha_scalesets.listener.config import ListenerSettings, ScaleSetConfig
from gha_scalesets.listener.credentials import CredentialsLoadError, load_credentials
from gha_scalesets.listener.leadership import (
    LeaderElector,
    LeaseStore,
    build_lease_store,
    lease_identity,
)
from gha_scalesets.listener.metrics import ListenerMetrics
from gha_scalesets.listener.registry import build_profile_store, build_registry
from gha_scalesets.listener.registry.base import (
    Registry,
    RunnerRecord,
    RunnerState,
    UnknownRunnerError,
)
from gha_scalesets.listener.runtimes import build_runtime
from gha_scalesets.listener.runtimes.base import RunnerPhase, Runtime, RuntimeEvent, SpotMarket
from gha_scalesets.listener.scaler import Scaler
from gha_scalesets.listener.scaling import Backoff
from gha_scalesets.listener.server import MetricsServer, build_app
from gha_scalesets.listener.session import find_scale_set, is_transient
from gha_scalesets.listener.worker import ScaleSetWorker
from gha_scalesets.scaleset import Client, ScaleSet
from gha_scalesets.scaleset.errors import ScaleSetError

log = structlog.get_logger("listener")

# Per phase (sessions, then runtime/registry/client): the whole stop stays within 10 s.
_STOP_TIMEOUT_SECONDS = 4.0


class StartupError(Exception):
    """The listener cannot start; the message says what to fix."""


async def resolve_scale_set(client: Client, config: ScaleSetConfig) -> ScaleSet:
    """The configured scale set, by id or by (runner group, name)."""
    found = await find_scale_set(client, config)
    if found is None:
        which = (
            f"id {config.scale_set_id}"
            if config.scale_set_id is not None
            else f"{config.name!r} not found in runner group {config.runner_group!r}"
        )
        raise StartupError(
            f"scale set {which} at {client.config.url}: create it first (`pulumi up`), "
            "or fix scale_sets[] in the listener settings"
        )
    return found


class Listener:
    """A running listener; ``start`` it, then ``run_until`` a stop event, then ``stop`` it.

    ``registry``, ``runtime`` and ``leases`` default to what the settings describe (tests
    inject their own); so does ``client`` (a replay brings one over its own transport).
    ``clock`` gives epoch seconds (times of day, runner ages); deadlines follow the event
    loop's clock, so the whole listener can run in virtual time.
    """

    def __init__(
        self,
        settings: ListenerSettings,
        *,
        registry: Registry | None = None,
        runtime: Runtime | None = None,
        leases: LeaseStore | None = None,
        client: Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.metrics = ListenerMetrics(settings.github_config_url)
        # Requests of the DynamoDB registry and leases (the runtime counts its own).
        self.store_calls: Counter[str] = Counter()
        self.registry: Registry = registry or build_registry(
            settings,
            on_cache_lookup=lambda hit: self.metrics.registry_cache.labels(
                "hit" if hit else "miss"
            ).inc(),
            api_calls=self.store_calls,
        )
        self.profiles = build_profile_store(settings, self.registry)
        self.runtime: Runtime = runtime or build_runtime(settings)
        self.metrics.attach_cloud_calls(lambda: self.runtime.api_calls + self.store_calls)
        if isinstance(self.runtime, SpotMarket):
            spot = self.runtime
            self.metrics.attach_spot_fallbacks(lambda: spot.spot_fallbacks)
        self.owner = settings.owner_name or socket.gethostname()
        self.identity = lease_identity(self.owner)
        self.leases: LeaseStore = leases or build_lease_store(settings, self.store_calls)
        self.client: Client | None = client
        self._clock = clock
        self.workers: dict[int, ScaleSetWorker] = {}
        self.metrics_port: int | None = None
        self._server: MetricsServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    def ready(self) -> dict[str, bool]:
        """Whether each scale set is served (holds a message session) or stood by."""
        return {w.scaler.scale_set.name: w.ready for w in self.workers.values()}

    def leading(self) -> dict[str, bool]:
        """Whether this replica is the active one of each scale set."""
        return {w.scaler.scale_set.name: w.session is not None for w in self.workers.values()}

    def _healthy(self) -> bool:
        return not any(t.done() for t in self._tasks)

    async def start(self) -> None:
        """Serve metrics, authenticate, resolve the scale sets and start their loops."""
        if self.settings.metrics_port is not None:
            app = build_app(self.metrics.registry, self._healthy, self.ready)
            self._server = MetricsServer(
                app, self.settings.metrics_host, self.settings.metrics_port
            )
            self.metrics_port = await self._server.start()
        if self.client is None:
            self.client = await self._new_client()
        self.metrics.attach_credentials(self.client.pacing_snapshot)
        scale_sets = [await self._resolve(config) for config in self.settings.scale_sets]
        self.client.identify(*(s.id for s in scale_sets))
        for config, scale_set in zip(self.settings.scale_sets, scale_sets, strict=True):
            scaler = Scaler(
                scale_set,
                config,
                self.settings,
                client=self.client,
                registry=self.registry,
                runtime=self.runtime,
                metrics=self.metrics,
                clock=self._clock,
                profiles=self.profiles,
            )
            leadership = self.settings.leadership
            elector = LeaderElector(
                self.leases,
                scale_set.id,
                self.identity,
                duration=leadership.lease_duration_seconds,
                renew_interval=leadership.renew_interval_seconds,
                clock=asyncio.get_running_loop().time,
            )
            worker = ScaleSetWorker(
                scaler,
                self.settings,
                client=self.client,
                metrics=self.metrics,
                owner=self.owner,
                elector=elector,
            )
            self.workers[scale_set.id] = worker
            self._tasks.append(asyncio.create_task(worker.run(), name=f"worker-{scale_set.name}"))
        self._tasks.append(asyncio.create_task(self._route_events(), name="runtime-events"))
        if self.settings.cloudwatch is not None:
            publisher = CloudWatchPublisher(
                self.settings.cloudwatch,
                self.settings.aws,
                self.metrics,
                alive=self._healthy,
                leading=lambda: sum(self.leading().values()),
            )
            self._tasks.append(asyncio.create_task(publisher.run(), name="cloudwatch-metrics"))
        log.info(
            "listener started",
            scale_sets=[s.name for s in scale_sets],
            runtime=self.runtime.name,
            credentials=self.client.credentials,
            owner=self.owner,
            lease_identity=self.identity,
            lease_store=self.leases.name,
            metrics_port=self.metrics_port,
        )

    async def _new_client(self) -> Client:
        try:
            credentials = await load_credentials(self.settings.credentials, self.settings.aws)
            proxy = self.settings.proxy
            return Client(
                self.settings.github_config_url,
                credentials,
                observer=self.metrics.observe_api,
                subsystem="listener",
                proxy=proxy.get_secret_value() if proxy else None,
                no_proxy=self.settings.no_proxy,
                ca_bundle=self.settings.ca_bundle,
                pacing=self.settings.pacing.settings(),
            )
        except (CredentialsLoadError, ScaleSetError, ValueError) as exc:
            raise StartupError(str(exc)) from None

    async def _resolve(self, config: ScaleSetConfig) -> ScaleSet:
        assert self.client is not None
        backoff = Backoff(cap=self.settings.max_backoff_seconds)
        while True:
            try:
                return await resolve_scale_set(self.client, config)
            except ScaleSetError as exc:
                if not is_transient(exc):
                    raise StartupError(str(exc)) from None
                delay = backoff.failed()
                log.warning(
                    "GitHub unavailable, retrying", error=str(exc), retry_in=round(delay, 2)
                )
                await asyncio.sleep(delay)

    async def run_until(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; raises if a scale set's loop failed."""
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([stopper, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _route_events(self) -> None:
        async for event in self.runtime.events():
            try:
                await self._on_event(event)
            except Exception:
                log.exception("runtime event handling failed", provider_id=event.provider_id)

    async def _find(self, event: RuntimeEvent) -> RunnerRecord | None:
        if event.runner_name and event.scale_set_id is not None:
            record = await self.registry.get(event.scale_set_id, event.runner_name)
            # provider_id is None while the launch is being recorded
            if record is not None and record.provider_id in (None, event.provider_id):
                return record
            return None
        return await self.registry.find_by_provider_id(event.provider_id)

    async def _on_event(self, event: RuntimeEvent) -> None:
        record = await self._find(event)
        # by the scaler's current id: a scale set recreated on GitHub keeps its worker
        worker = next(
            (w for w in self.workers.values() if record and w.scaler.ss_id == record.scale_set_id),
            None,
        )
        if record is None or worker is None:
            return  # already released (job completed first) or another listener's runner
        if event.phase in (RunnerPhase.STOPPED, RunnerPhase.FAILED):
            await worker.scaler.runner_ended(record, event)
        elif event.phase is RunnerPhase.RUNNING and record.state is RunnerState.LAUNCHED:
            with contextlib.suppress(UnknownRunnerError):
                await self.registry.update(
                    record.scale_set_id, record.runner_name, state=RunnerState.IDLE
                )

    async def stop(self) -> None:
        """Delete the sessions, stop the runtime's background work, release every client."""
        if self._stopped:
            return
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=_STOP_TIMEOUT_SECONDS)
            if pending:
                # Interrupt what is still deleting sessions: those expire on GitHub, while a
                # task left running would use the client closed below.
                log.warning("tasks still running at shutdown: cancelling", tasks=len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        steps = [self.runtime.close(), self.registry.close(), self.leases.close()]
        if self.profiles is not self.registry:
            steps.append(self.profiles.close())
        if self.client is not None:
            steps.append(self.client.aclose())
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*steps, return_exceptions=True), _STOP_TIMEOUT_SECONDS
            )
        except TimeoutError:
            log.error("shutdown did not finish in time")
        else:
            for result in results:
                if isinstance(result, Exception):
                    log.error("shutdown step failed", error=f"{type(result).__name__}: {result}")
        if self._server is not None:
            await self._server.stop()
        log.info("listener stopped")
