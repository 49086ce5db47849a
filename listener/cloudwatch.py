"""Publishes the metrics the CloudWatch alarms read (``components/alarms.py``) once a minute.

Values come from the listener's own Prometheus metrics: counters as their increase since the
last successful publish (a failed publish carries its counts over to the next one), gauges as
they are at publish time. One ``PutMetricData`` call per interval carries every data point.
"""

from __future__ import annotations

import asyncio
from collections import Counter as CallCounter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from botocore.client import BaseClient
from prometheus_client import Counter, Gauge
from prometheus_client.samples import Sample

from gha_scalesets.contract.names import METRICS_DIMENSION
from gha_scalesets.listener.aws import call, error_message, make_client
from gha_scalesets.listener.config import AwsConfig, CloudWatchConfig
from gha_scalesets.listener.metrics import ListenerMetrics, budget_ratio
from gha_scalesets.scaleset.retry import RetryPolicy

log = structlog.get_logger("listener.cloudwatch")

# A failed publish is not repeated: its counts go with the next one (a resent PutMetricData
# whose first answer was lost would count them twice).
_ONE_ATTEMPT = RetryPolicy(max_attempts=1, deadline=None)
_UNITS = {"CredentialBudgetMinPercent": "Percent", "HttpPoolWaitSeconds": "Seconds"}


@dataclass(frozen=True)
class Totals:
    """Counter totals since the listener started."""

    api_requests: float = 0.0
    api_errors: float = 0.0
    launch_failures: float = 0.0
    spot_fallbacks: float = 0.0
    idle_runner_seconds: float = 0.0
    job_arrivals: float = 0.0

    def since(self, earlier: Totals) -> Totals:
        return Totals(
            *(now - before for now, before in zip(astuple(self), astuple(earlier), strict=True))
        )


def _is_error(status: str) -> bool:
    # What the api-error-rate alarm counts: 5xx, 429 and "error" (no HTTP answer at all).
    return status in ("error", "429") or status.startswith("5")


def _values(metric: Counter | Gauge) -> Iterator[Sample]:
    for family in metric.collect():
        for sample in family.samples:
            if not sample.name.endswith("_created"):
                yield sample


def read_totals(metrics: ListenerMetrics) -> Totals:
    """The API request, API error, launch failure and spot fallback totals of ``metrics``."""
    requests = list(_values(metrics.api_requests))
    return Totals(
        api_requests=sum(s.value for s in requests),
        api_errors=sum(s.value for s in requests if _is_error(s.labels["status"])),
        launch_failures=sum(s.value for s in _values(metrics.launch_failures)),
        spot_fallbacks=metrics.spot_fallbacks(),
        idle_runner_seconds=sum(s.value for s in _values(metrics.idle_runner_seconds)),
        job_arrivals=sum(s.value for s in _values(metrics.job_arrivals)),
    )


def _gauge_sum(gauge: Gauge) -> float:
    return sum(s.value for s in _values(gauge))


def credential_budget_percent(metrics: ListenerMetrics) -> float:
    """The lowest share of its rate-limit budget any credential has left, in percent."""
    return 100 * min(map(budget_ratio, metrics.credentials()), default=1.0)


def jobs_waiting(metrics: ListenerMetrics) -> float:
    """Jobs assigned to the scale sets but not running yet, from their latest statistics."""
    running = {tuple(s.labels.values()): s.value for s in _values(metrics.running_jobs)}
    return sum(
        max(0.0, s.value - running.get(tuple(s.labels.values()), 0.0))
        for s in _values(metrics.assigned_jobs)
    )


class CloudWatchPublisher:
    """Sends the alarm metrics every ``config.interval_seconds`` until cancelled.

    ``alive`` says whether the listener's loops run (Heartbeat 1, else 0), ``leading`` how many
    scale sets this replica serves as the active one (``ActiveScaleSets``), ``pool_wait`` the
    longest wait for a connection to GitHub since the last call (``HttpPoolWaitSeconds``);
    ``clock`` stamps the data points and sets the schedule, ``wait`` sleeps between publishes
    (tests drive both); ``client`` defaults to a CloudWatch client for ``aws``, created on the
    first publish.
    """

    def __init__(
        self,
        config: CloudWatchConfig,
        aws: AwsConfig,
        metrics: ListenerMetrics,
        *,
        alive: Callable[[], bool] = lambda: True,
        leading: Callable[[], int] = lambda: 1,
        pool_wait: Callable[[], float] = lambda: 0.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        wait: Callable[[float], Awaitable[None]] = asyncio.sleep,
        client: BaseClient | None = None,
    ) -> None:
        self.config = config
        self._aws = aws
        self._metrics = metrics
        self._alive = alive
        self._leading = leading
        self._pool_wait = pool_wait
        self._clock = clock
        self._wait = wait
        self._client = client
        self._published = Totals()
        self.publishes = Counter(
            "gha_listener_cloudwatch_publishes",
            "PutMetricData calls of the CloudWatch publisher by result (ok, failed)",
            ("result",),
            registry=metrics.registry,
        )

    async def run(self) -> None:
        """Publish once per interval, on a fixed schedule (a slow call does not shift it)."""
        step = timedelta(seconds=self.config.interval_seconds)
        due = self._clock()
        while True:
            now = self._clock()
            # Clamped so that a wall clock that jumps neither bursts publishes nor stalls them.
            due = min(max(due + step, now), now + step)
            await self._wait((due - now).total_seconds())
            await self.publish()

    async def publish(self) -> bool:
        """Send one interval's data points; failures are logged and counted, never raised."""
        totals = read_totals(self._metrics)
        data = self.metric_data(totals.since(self._published), self._clock())
        try:
            await self._put(data)
        except Exception as exc:  # any SDK or network failure: the listener must keep scaling
            self.publishes.labels("failed").inc()
            log.warning(
                "publishing CloudWatch metrics failed, counts carried to the next interval",
                error=error_message(exc),
                namespace=self.config.namespace,
            )
            return False
        self._published = totals
        self.publishes.labels("ok").inc()
        return True

    def metric_data(self, delta: Totals, now: datetime) -> list[dict[str, Any]]:
        """The ``MetricData`` of one publish."""
        leading = self._leading()
        values = {
            "Heartbeat": 1.0 if self._alive() else 0.0,
            "ApiRequests": delta.api_requests,
            "ApiErrors": delta.api_errors,
            "RunnerLaunchFailures": delta.launch_failures,
            "SpotFallbacks": delta.spot_fallbacks,
            "ActiveScaleSets": float(leading),
            "IdleRunnerMinutes": delta.idle_runner_seconds / 60,
            "JobArrivals": delta.job_arrivals,
            "CredentialBudgetMinPercent": credential_budget_percent(self._metrics),
            "HttpPoolWaitSeconds": self._pool_wait(),
        }
        if leading:  # a standby's statistics are stale or absent: the alarm reads the active's
            m = self._metrics
            values["JobsWaiting"] = jobs_waiting(m)
            values["WarmRunners"] = _gauge_sum(m.warm_runners)
            values["ForecastArrivals"] = _gauge_sum(m.forecast_arrivals)
            # per hour as exported; per minute here, so that an hour's Sum is the budget
            values["IdleBudgetMinutes"] = _gauge_sum(m.idle_budget) / 60
        # Every data point carries the one dimension, valued ``CloudWatchConfig.listener_name``.
        dimensions = [{"Name": METRICS_DIMENSION, "Value": self.config.listener_name}]
        return [
            {
                "MetricName": name,
                "Dimensions": dimensions,
                "Timestamp": now,
                "Value": value,
                "Unit": _UNITS.get(name, "Count"),
            }
            for name, value in values.items()
        ]

    async def _put(self, data: list[dict[str, Any]]) -> None:
        if self._client is None:
            # Its call counter stays unread: the publishes counter above already counts them.
            self._client = make_client("cloudwatch", self._aws, CallCounter())
        await call(
            self._client,
            "put_metric_data",
            _ONE_ATTEMPT,
            Namespace=self.config.namespace,
            MetricData=data,
        )
