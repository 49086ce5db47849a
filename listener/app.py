"""The listener process: one client, registry, runtime and metrics endpoint for all its scale sets.

``Listener`` wires the parts together; one :class:`~listener.worker.ScaleSetWorker` task per
scale set holds its session; one task routes runtime events to the scale set they belong to;
one heartbeats this replica so that replicas share the scale sets (``leadership.balance``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import time
from collections import Counter
from collections.abc import Callable

import structlog

from gha_scalesets.listener.capacity import CapacityError, ensure_open_files, plan
from gha_scalesets.listener.cloudwatch import CloudWatchPublisher
from gha_scalesets.listener.config import ListenerSettings
from gha_scalesets.listener.credentials import CredentialsLoadError, load_credentials
from gha_scalesets.listener.leadership import (
    LeaderElector,
    LeaseStore,
    build_lease_store,
    lease_identity,
)
from gha_scalesets.listener.leadership.balance import Balancer, member_group
from gha_scalesets.listener.leadership.snapshot import LeaseSnapshot
from gha_scalesets.listener.looplag import watch_loop_lag
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
from gha_scalesets.listener.server import MetricsServer, build_app
from gha_scalesets.listener.startup import StartupError, resolve_scale_sets
from gha_scalesets.listener.worker import Pacing, Phase, ScaleSetWorker
from gha_scalesets.scaleset import Client
from gha_scalesets.scaleset.errors import ScaleSetError
from gha_scalesets.scaleset.pool import PoolSettings

__all__ = ["Listener", "StartupError"]

log = structlog.get_logger("listener")

# Per phase (sessions, then runtime/registry/client), plus per scale set for the sessions:
# 8 s for one scale set, 18 s for 2,000 (within ECS's and Kubernetes's 30 s stop grace).
_STOP_TIMEOUT_SECONDS = 4.0
_STOP_SECONDS_PER_SCALE_SET = 0.005
_DELETES_IN_FLIGHT = 32
_UNDELETED_NAMES_LOGGED = 50
_SETTLE_CHECKS = 120  # freeze startup's objects at the latest two minutes after the start


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
        self.balancer: Balancer | None = None
        self._snapshot: LeaseSnapshot | None = None
        self._heartbeat: asyncio.Task[None] | None = None
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
        try:
            capacity = plan(self.settings)
            open_files = ensure_open_files(capacity.open_files)
        except CapacityError as exc:
            raise StartupError(str(exc)) from None
        if self.client is None:
            self.client = await self._new_client(capacity.pool_settings())
        client = self.client
        self.metrics.attach_credentials(client.pacing_snapshot)
        self.metrics.attach_pool(lambda: client.pool_stats)
        scale_sets = await resolve_scale_sets(
            client,
            self.settings.scale_sets,
            concurrency=self.settings.capacity.startup_concurrency,
            max_backoff=self.settings.max_backoff_seconds,
        )
        client.identify(*(s.id for s in scale_sets))
        leadership = self.settings.leadership
        loop_clock = asyncio.get_running_loop().time  # virtual in a replay, like every deadline
        balancer = self.balancer = self._balancer(len(scale_sets), loop_clock)
        self._snapshot = LeaseSnapshot(
            self.leases, leadership.renew_interval_seconds / 2, loop_clock
        )
        pacing = Pacing(
            opens=asyncio.Semaphore(self.settings.capacity.startup_concurrency),
            closes=asyncio.Semaphore(_DELETES_IN_FLIGHT),
        )
        # Polls return at phases spread evenly over the stagger window, in configuration order.
        window, epoch = self.settings.capacity.poll_stagger_seconds, loop_clock()
        for index, (config, scale_set) in enumerate(
            zip(self.settings.scale_sets, scale_sets, strict=True)
        ):
            scaler = Scaler(
                scale_set,
                config,
                self.settings,
                client=client,
                registry=self.registry,
                runtime=self.runtime,
                metrics=self.metrics,
                clock=self._clock,
                profiles=self.profiles,
            )
            elector = LeaderElector(
                self.leases,
                scale_set.id,
                self.identity,
                duration=leadership.lease_duration_seconds,
                renew_interval=leadership.renew_interval_seconds,
                gate=balancer,
                reader=self._snapshot.read,
                clock=loop_clock,
            )
            self.workers[scale_set.id] = ScaleSetWorker(
                scaler,
                self.settings,
                client=client,
                metrics=self.metrics,
                owner=self.owner,
                elector=elector,
                pacing=pacing,
                phase=Phase(epoch + window * index / len(scale_sets), window) if window else None,
                on_handed_over=balancer.handed_over,
            )
        try:  # before the electors start: replicas already running count this one at once
            await balancer.tick()
        except Exception as exc:
            log.warning("replica heartbeat failed", error=str(exc))
        self._heartbeat = asyncio.create_task(balancer.run(), name="replica-heartbeat")
        self._tasks.append(self._heartbeat)
        for worker in self.workers.values():
            self._tasks.append(asyncio.create_task(worker.run(), name=f"worker-{worker.name}"))
        self._tasks.append(asyncio.create_task(self._route_events(), name="runtime-events"))
        self._tasks.append(
            asyncio.create_task(watch_loop_lag(self.metrics.loop_lag.observe), name="loop-lag")
        )
        if self.settings.cloudwatch is not None:
            publisher = CloudWatchPublisher(
                self.settings.cloudwatch,
                self.settings.aws,
                self.metrics,
                alive=self._healthy,
                leading=lambda: sum(self.leading().values()),
                pool_wait=lambda: max(
                    (lane.take_max_wait() for lane in client.pool_stats.values()), default=0.0
                ),
            )
            self._tasks.append(asyncio.create_task(publisher.run(), name="cloudwatch-metrics"))
        log.info(
            "listener started",
            scale_sets=len(scale_sets),
            runtime=self.runtime.name,
            credentials=self.client.credentials,
            owner=self.owner,
            lease_identity=self.identity,
            lease_store=self.leases.name,
            metrics_port=self.metrics_port,
            long_poll_connections=capacity.long_poll_connections,
            api_connections=capacity.api_connections,
            open_files_limit=open_files,
        )

    async def freeze_when_settled(self) -> None:
        """Once every scale set is served or stood by, exempt what startup built from garbage
        collection: with thousands of scale sets a full collection otherwise stalls the event
        loop (every poll, renewal and launch) for a quarter of a second now and then.

        Process-wide, so the process's owner runs it (``python -m gha_scalesets.listener run``
        does), not every ``Listener`` (several may share a test process)."""
        for _ in range(_SETTLE_CHECKS):  # a check a second
            if all(self.ready().values()):
                break
            await asyncio.sleep(1.0)
        gc.collect()
        gc.freeze()
        log.info("startup objects exempt from garbage collection", objects=gc.get_freeze_count())

    def _balancer(self, total: int, clock: Callable[[], float]) -> Balancer:
        leadership = self.settings.leadership
        balancer = Balancer(
            self.leases,
            member_group(
                self.settings.github_config_url,
                [c.model_dump(mode="json") for c in self.settings.scale_sets],
            ),
            self.identity,
            total,
            duration=leadership.lease_duration_seconds,
            renew_interval=leadership.renew_interval_seconds,
            shed=self._hand_over,
            clock=clock,
        )
        self.metrics.replicas.set_function(lambda: balancer.replicas)
        self.metrics.lease_share.set_function(lambda: balancer.share)
        return balancer

    def _hand_over(self, count: int) -> int:
        """Hand ``count`` led scale sets over, those that want no runners first."""
        candidates = sorted(
            (w for w in self.workers.values() if w.leading and not w.handing_over),
            key=lambda w: (w.scaler.desired or 0, w.scaler.ss_id),
        )
        return sum(w.hand_over() for w in candidates[:count])

    async def _new_client(self, pool: PoolSettings) -> Client:
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
                pool_settings=pool,
            )
        except (CredentialsLoadError, ScaleSetError, ValueError) as exc:
            raise StartupError(str(exc)) from None

    async def run_until(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; raises if a scale set's loop failed."""
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([stopper, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]  # not None: checked above

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
        """Leave the replicas, delete the sessions and release the leases, stop the runtime's
        background work, release every client."""
        if self._stopped:
            return
        self._stopped = True
        if self.balancer is not None:
            if self._heartbeat is not None:
                self._heartbeat.cancel()  # no handover starts from here on
            # First, so that the other replicas' shares grow before the leases are free.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.balancer.leave(), _STOP_TIMEOUT_SECONDS)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            budget = _STOP_TIMEOUT_SECONDS + _STOP_SECONDS_PER_SCALE_SET * len(self.workers)
            _, pending = await asyncio.wait(self._tasks, timeout=budget)
            if pending:
                # Interrupt what is still deleting sessions: those expire on GitHub, while a
                # task left running would use the client closed below.
                log.warning("tasks still running at shutdown: cancelling", tasks=len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        self._report_undeleted()
        steps = [self.runtime.close(), self.registry.close(), self.leases.close()]
        if self._snapshot is not None:
            steps.append(self._snapshot.close())
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

    def _report_undeleted(self) -> None:
        """Say which sessions the stop could not delete: GitHub expires them after a while;
        until then a successor that does not know them waits out a 409."""
        names = sorted(w.name for w in self.workers.values() if w.undeleted_session)
        if names:
            shown = names[:_UNDELETED_NAMES_LOGGED]
            log.error(
                "message sessions not deleted: they expire on GitHub on their own",
                count=len(names),
                scale_sets=shown,
                more=len(names) - len(shown),
            )
