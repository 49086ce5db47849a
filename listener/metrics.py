"""Prometheus metrics of one listener, in their own registry (several listeners per test process).

The ``gha_*`` names and labels follow ARC's listener where the meaning is the same (``name`` is
the scale set; ARC's Kubernetes ``namespace`` label has no counterpart here). ``gha_listener_*``
metrics are ours: API requests by route and status, JIT batches, registry cache, cloud calls,
spot fallbacks, warm capacity and the rate-limit budget of each credential.
"""

from __future__ import annotations

from collections import Counter as CallCounter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gha_scalesets.scaleset.config_url import parse_config_url
from gha_scalesets.scaleset.messages import JobMessage
from gha_scalesets.scaleset.models import Statistics
from gha_scalesets.scaleset.sharding import LaneStats

# ARC's job-duration buckets span 10 ms to an hour.
_JOB_BUCKETS = (
    0.01, 0.05, 0.1, 0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 18, 20, 25, 30, 40, 50, 60,
    70, 80, 90, 100, 110, 120, 150, 180, 210, 240, 300, 360, 420, 480, 540, 600, 900, 1200,
    1800, 2400, 3000, 3600,
)  # fmt: skip
_API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_BATCH_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500)

_SCALE_SET_LABELS = ("enterprise", "organization", "repository", "name")
_JOB_LABELS = ("enterprise", "organization", "repository", "job_name", "event_name")


class _CounterView(Collector):
    """Exposes a counter the runtime owns (``api_calls``, ``spot_fallbacks``) at scrape time."""

    def __init__(
        self, name: str, documentation: str, label: str, source: Callable[[], CallCounter[str]]
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._label = label
        self._source = source

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(self._name, self._documentation, labels=(self._label,))
        for key, count in sorted(self._source().items()):
            family.add_metric([key], count)
        yield family


class _PoolStats(Collector):
    """Exposes the shared HTTP pool's lanes at scrape time (the transport owns the counts)."""

    def __init__(self, source: Callable[[], Mapping[str, LaneStats]]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        lanes = sorted(self._source().items())
        wait = HistogramMetricFamily(
            "gha_listener_http_pool_wait_seconds",
            "Wait for a free connection to GitHub, by lane (api; long_poll: message polls)",
            labels=("lane",),
        )
        capacity = GaugeMetricFamily(
            "gha_listener_http_connections",
            "Connection budget of the lane (capacity.* settings)",
            labels=("lane",),
        )
        in_use = GaugeMetricFamily(
            "gha_listener_http_connections_in_use",
            "Requests of the lane in flight (each holds a connection)",
            labels=("lane",),
        )
        waiting = GaugeMetricFamily(
            "gha_listener_http_pool_waiting",
            "Requests of the lane waiting for a free connection",
            labels=("lane",),
        )
        timeouts = CounterMetricFamily(
            "gha_listener_http_pool_timeouts",
            "Requests that gave up waiting for a free connection",
            labels=("lane",),
        )
        for lane, stats in lanes:
            wait.add_metric([lane], stats.cumulative_buckets(), stats.wait_seconds)
            capacity.add_metric([lane], stats.capacity)
            in_use.add_metric([lane], stats.in_use)
            waiting.add_metric([lane], stats.waiting)
            timeouts.add_metric([lane], stats.timeouts)
        yield from (wait, capacity, in_use, waiting, timeouts)


def budget_ratio(credential: dict[str, Any]) -> float:
    """How much of its primary (hourly) budget a credential has left, 0..1: the lowest over its
    route classes, 1 when GitHub sent no ``X-RateLimit-*`` yet, 0 while it is set aside."""
    if not credential["usable"]:
        return 0.0
    ratios = [
        c["rate_limit_remaining"] / c["rate_limit_limit"]
        for c in credential["classes"].values()
        if c["rate_limit_remaining"] is not None and c["rate_limit_limit"]
    ]
    return min(ratios, default=1.0)


class _Credentials(Collector):
    """The pacing state of the client's credentials, read at scrape time (labels: the
    credential's label, never a secret)."""

    def __init__(self, source: Callable[[], list[dict[str, Any]]]) -> None:
        self._source = source

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        both = ("credential", "route_class")
        usable = GaugeMetricFamily(
            "gha_listener_credential_usable",
            "1 while the credential is in rotation, 0 while set aside (GitHub refused it)",
            labels=("credential",),
        )
        ratio = GaugeMetricFamily(
            "gha_listener_credential_budget_ratio",
            "Share of the primary rate limit left (lowest over route classes; 0 if set aside)",
            labels=("credential",),
        )
        blocked = GaugeMetricFamily(
            "gha_listener_credential_blocked",
            "1 while a rate-limit block holds the credential's requests of this class",
            labels=both,
        )
        room = GaugeMetricFamily(
            "gha_listener_credential_window_remaining",
            "Requests the pacing window still admits (classes with a ceiling)",
            labels=both,
        )
        remaining = GaugeMetricFamily(
            "gha_listener_rate_limit_remaining",
            "X-RateLimit-Remaining as GitHub last reported it",
            labels=both,
        )
        refusals = CounterMetricFamily(
            "gha_listener_rate_limit_refusals",
            "Requests GitHub refused for a rate limit ('after_signal': sent after a first one)",
            labels=(*both, "after_signal"),
        )
        blocked_seconds = CounterMetricFamily(
            "gha_listener_credential_blocked_seconds",
            "Seconds of rate-limit blocks imposed on the credential's requests",
            labels=both,
        )
        for credential in self._source():
            label = credential["credential"]
            usable.add_metric([label], 1 if credential["usable"] else 0)
            ratio.add_metric([label], budget_ratio(credential))
            for cls, c in credential["classes"].items():
                blocked.add_metric([label, cls], 1 if c["blocked"] else 0)
                if c["window_room"] is not None:
                    room.add_metric([label, cls], c["window_room"])
                if c["rate_limit_remaining"] is not None:
                    remaining.add_metric([label, cls], c["rate_limit_remaining"])
                after = c["refused_after_signal"]
                refusals.add_metric([label, cls, "false"], c["refused"] - after)
                refusals.add_metric([label, cls, "true"], after)
                blocked_seconds.add_metric([label, cls], c["blocked_seconds"])
        yield from (usable, ratio, blocked, room, remaining, refusals, blocked_seconds)


class ListenerMetrics:
    """All metrics of one listener process, registered in ``self.registry``."""

    def __init__(self, config_url: str) -> None:
        scope = parse_config_url(config_url)
        self._scope = (scope.enterprise or "", scope.organization or "", scope.repository or "")
        self.registry = CollectorRegistry(auto_describe=True)
        self.credentials: Callable[[], list[dict[str, Any]]] = list  # set once the client exists
        r = self.registry

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, _SCALE_SET_LABELS, registry=r)

        self.assigned_jobs = gauge("gha_assigned_jobs", "Jobs assigned to the scale set")
        self.running_jobs = gauge("gha_running_jobs", "Jobs running on the scale set")
        self.registered_runners = gauge("gha_registered_runners", "Runners registered on GitHub")
        self.busy_runners = gauge("gha_busy_runners", "Registered runners running a job")
        self.idle_runners = gauge("gha_idle_runners", "Registered runners waiting for a job")
        self.min_runners = gauge("gha_min_runners", "Configured minimum runners")
        self.max_runners = gauge("gha_max_runners", "Configured maximum runners")
        self.desired_runners = gauge("gha_desired_runners", "Runners the scaler wants")
        self.managed_runners = gauge(
            "gha_listener_managed_runners", "Runners counted in the listener's registry"
        )
        self.session_ready = gauge(
            "gha_listener_session_ready", "1 while the scale set has a message session"
        )
        self.started_jobs = Counter(
            "gha_started_jobs", "Jobs started by runners", _JOB_LABELS, registry=r
        )
        self.completed_jobs = Counter(
            "gha_completed_jobs",
            "Jobs completed (or cancelled)",
            (*_JOB_LABELS, "job_result"),
            registry=r,
        )
        self.job_startup = Histogram(
            "gha_job_startup_duration_seconds",
            "Runner assign time minus scale set assign time",
            _JOB_LABELS,
            buckets=_JOB_BUCKETS,
            registry=r,
        )
        self.job_execution = Histogram(
            "gha_job_execution_duration_seconds",
            "Finish time minus runner assign time",
            (*_JOB_LABELS, "job_result"),
            buckets=_JOB_BUCKETS,
            registry=r,
        )
        self.api_requests = Counter(
            "gha_listener_api_requests",
            "HTTP requests to GitHub by route and status ('error': no HTTP answer)",
            ("method", "route", "status"),
            registry=r,
        )
        self.api_latency = Histogram(
            "gha_listener_api_request_duration_seconds",
            "HTTP request latency to GitHub by route (long polls included)",
            ("method", "route"),
            buckets=_API_BUCKETS,
            registry=r,
        )
        self.jit_batch_size = Histogram(
            "gha_listener_jit_batch_size",
            "Runners per JIT-config batch",
            ("name",),
            buckets=_BATCH_SIZES,
            registry=r,
        )
        self.jit_batch_duration = Histogram(
            "gha_listener_jit_batch_duration_seconds",
            "Duration of one JIT-config batch",
            ("name",),
            buckets=_API_BUCKETS,
            registry=r,
        )
        self.launch_failures = Counter(
            "gha_listener_launch_failures",
            "Runners whose JIT config or launch failed (slot released, GitHub runner removed)",
            ("name", "stage"),
            registry=r,
        )
        self.scaled_down = Counter(
            "gha_listener_scaled_down_runners",
            "Idle surplus runners removed",
            ("name",),
            registry=r,
        )
        self.registry_cache = Counter(
            "gha_listener_registry_cache",
            "Registry count lookups served from the in-memory TTL cache (hit) or the store (miss)",
            ("result",),
            registry=r,
        )
        self.reconcile_repairs = Counter(
            "gha_listener_reconcile_repairs",
            "Inconsistencies repaired by reconciliation",
            ("name", "kind"),
            registry=r,
        )
        self.session_events = Counter(
            "gha_listener_session_events",
            "Message-session lifecycle events (created, conflict, refreshed, recreated, deleted)",
            ("name", "event"),
            registry=r,
        )
        self.leader = gauge(
            "gha_listener_leader", "1 while this replica is the scale set's active listener"
        )
        self.lease_takeovers = Counter(
            "gha_listener_lease_takeovers",
            "Leaderships won, by how (free, released, expired: the holder went silent, own)",
            ("name", "reason"),
            registry=r,
        )
        self.lease_losses = Counter(
            "gha_listener_lease_losses",
            "Leaderships lost while serving (fenced: another replica took over, or no renewal)",
            ("name",),
            registry=r,
        )
        self.messages = Counter(
            "gha_listener_messages", "Message-queue messages handled", ("name",), registry=r
        )
        self.lease_handovers = Counter(
            "gha_listener_lease_handovers",
            "Scale sets handed over to another replica to balance the load",
            ("name",),
            registry=r,
        )
        self.loop_lag = Histogram(
            "gha_listener_event_loop_lag_seconds",
            "How late the event loop ran a timer (every callback of every scale set waits)",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.replicas = Gauge(
            "gha_listener_replicas", "Live listener replicas this replica sees", registry=r
        )
        self.lease_share = Gauge(
            "gha_listener_lease_share",
            "Scale sets this replica may lead: ceil(scale sets / live replicas)",
            registry=r,
        )
        self._spot_fallbacks: Callable[[], CallCounter[str]] = CallCounter
        # Warm capacity (docs/listener.md, "Warm capacity").
        self.warm_target = gauge(
            "gha_listener_warm_target",
            "Runners the warm-capacity policy keeps beyond the assigned jobs",
        )
        self.warm_runners = gauge(
            "gha_listener_warm_runners", "Runners beyond the assigned jobs now (booting or idle)"
        )
        self.idle_runner_seconds = Counter(
            "gha_listener_idle_runner_seconds",
            "Runner-seconds spent warm: runners beyond the assigned jobs, booting or idle",
            ("name",),
            registry=r,
        )
        self.idle_budget = gauge(
            "gha_listener_idle_budget_minutes_per_hour",
            "Warm runner-minutes per hour the policy may spend now (floors x 60, or the cap)",
        )
        self.job_arrivals = Counter(
            "gha_listener_job_arrivals",
            "Jobs assigned to the scale set (demand)",
            ("name",),
            registry=r,
        )
        self.forecast_arrivals = gauge(
            "gha_listener_forecast_arrivals_per_minute",
            "Job arrivals per minute the adaptive policy expects over the next boot time",
        )

    def attach_cloud_calls(self, source: Callable[[], CallCounter[str]]) -> None:
        """Expose the cloud API calls of the runtime, the registry and the leases, by
        ``service:Operation`` (read at scrape time)."""
        self.registry.register(
            _CounterView(
                "gha_listener_cloud_api_calls",
                "Cloud API calls of the runtime (describe/list only during reconciliation),"
                " the registry and the leases",
                "runtime_call",
                source,
            )
        )

    def attach_spot_fallbacks(self, source: Callable[[], CallCounter[str]]) -> None:
        """Expose the runtime's count of runners launched on-demand although spot is
        configured, by the spot refusal (read at scrape time; CloudWatch ``SpotFallbacks``)."""
        self._spot_fallbacks = source
        self.registry.register(
            _CounterView(
                "gha_listener_spot_fallbacks",
                "Runners launched on-demand although spot is configured, by why spot refused",
                "reason",
                source,
            )
        )

    def spot_fallbacks(self) -> float:
        """Runners launched on-demand although spot is configured, since the start."""
        return float(sum(self._spot_fallbacks().values()))

    def attach_credentials(self, source: Callable[[], list[dict[str, Any]]]) -> None:
        """Expose the client's per-credential pacing state (``Client.pacing_snapshot``)."""
        self.credentials = source
        self.registry.register(_Credentials(source))

    def attach_pool(self, source: Callable[[], Mapping[str, LaneStats]]) -> None:
        """Expose the HTTP pool's connection budgets and waits (read at scrape time)."""
        self.registry.register(_PoolStats(source))

    def scale_set_labels(self, name: str) -> tuple[str, ...]:
        return (*self._scope, name)

    def observe_api(self, method: str, route: str, status: int | None, seconds: float) -> None:
        """The scaleset client's observer hook: one call per HTTP attempt."""
        self.api_requests.labels(method, route, str(status) if status else "error").inc()
        self.api_latency.labels(method, route).observe(seconds)

    def record_statistics(self, name: str, stats: Statistics) -> None:
        labels = self.scale_set_labels(name)
        self.assigned_jobs.labels(*labels).set(stats.total_assigned_jobs)
        self.running_jobs.labels(*labels).set(stats.total_running_jobs)
        self.registered_runners.labels(*labels).set(stats.total_registered_runners)
        self.busy_runners.labels(*labels).set(stats.total_busy_runners)
        self.idle_runners.labels(*labels).set(stats.total_idle_runners)

    def _job_labels(self, job: JobMessage) -> tuple[str, ...]:
        enterprise = self._scope[0]
        return (
            enterprise,
            job.owner_name,
            job.repository_name,
            job.job_display_name,
            job.event_name,
        )

    def record_job_started(self, job: JobMessage) -> None:
        labels = self._job_labels(job)
        self.started_jobs.labels(*labels).inc()
        startup = _seconds_between(job.scale_set_assign_time, job.runner_assign_time)
        if startup is not None:
            self.job_startup.labels(*labels).observe(startup)

    def record_job_completed(self, job: JobMessage, result: str) -> None:
        labels = (*self._job_labels(job), result)
        self.completed_jobs.labels(*labels).inc()
        execution = _seconds_between(job.runner_assign_time, job.finish_time)
        if execution is not None:
            self.job_execution.labels(*labels).observe(execution)


def _seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())
