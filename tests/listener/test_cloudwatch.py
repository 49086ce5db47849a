"""The CloudWatch publisher against moto's server: the alarms' metrics arrive once per interval."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from gha_scalesets.listener.cloudwatch import CloudWatchPublisher
from gha_scalesets.listener.config import AwsConfig, CloudWatchConfig
from gha_scalesets.listener.metrics import ListenerMetrics
from gha_scalesets.scaleset.models import Statistics
from tests.support.aws import REGION as AWS_REGION
from tests.support.github import create_scale_set
from tests.support.inprocess import InProcessRuntime
from tests.support.listener import listener_settings, running_listener
from tests.support.waits import wait_for

LISTENER = "dev.ci"
NAMES = (
    "Heartbeat",
    "ApiRequests",
    "ApiErrors",
    "JobsWaiting",
    "RunnerLaunchFailures",
    "SpotFallbacks",
    "ActiveScaleSets",
    "IdleRunnerMinutes",
    "IdleBudgetMinutes",
    "JobArrivals",
    "WarmRunners",
    "ForecastArrivals",
    "CredentialBudgetMinPercent",
    "HttpPoolWaitSeconds",
)
START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)


class Intervals:
    """Stands in for ``asyncio.sleep`` and the wall clock: the test ends each interval."""

    def __init__(self) -> None:
        self.now = START
        self.waits: list[float] = []
        self._idle: asyncio.Queue[None] = asyncio.Queue()
        self._go: asyncio.Queue[None] = asyncio.Queue()

    def clock(self) -> datetime:
        return self.now

    async def wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        self._idle.put_nowait(None)
        await self._go.get()

    async def started(self) -> None:
        await asyncio.wait_for(self._idle.get(), 10)

    async def end(self) -> None:
        """Let a minute pass; returns once that interval's publish is done."""
        self.now += timedelta(minutes=1)
        self._go.put_nowait(None)
        await asyncio.wait_for(self._idle.get(), 10)


@pytest.fixture
async def intervals() -> Intervals:
    return Intervals()


@pytest.fixture
def metrics() -> ListenerMetrics:
    return ListenerMetrics("https://github.com/acme")


@pytest.fixture
def cloudwatch(boto_client):
    return boto_client("cloudwatch")


@pytest.fixture
async def running(
    metrics: ListenerMetrics, intervals: Intervals, cloudwatch
) -> AsyncIterator[CloudWatchPublisher]:
    pool_waits = iter([2.5])  # the longest wait for a connection, per interval
    publisher = CloudWatchPublisher(
        CloudWatchConfig(listener_name=LISTENER),
        AwsConfig(region=AWS_REGION),
        metrics,
        pool_wait=lambda: next(pool_waits, 0.0),
        clock=intervals.clock,
        wait=intervals.wait,
        client=cloudwatch,
    )
    task = asyncio.create_task(publisher.run())
    await intervals.started()
    yield publisher
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def credential(label: str, remaining: int | None, usable: bool = True) -> dict[str, Any]:
    """A credential as ``Client.pacing_snapshot`` shows it (primary limit of 5,000)."""
    rest = {
        "requests": 1,
        "refused": 0,
        "refused_after_signal": 0,
        "blocked_seconds": 0.0,
        "blocked": False,
        "window_room": None,
        "rate_limit_remaining": remaining,
        "rate_limit_limit": 5000,
    }
    return {"credential": label, "usable": usable, "classes": {"rest": rest}}


def _api_calls(metrics: ListenerMetrics, *statuses: int | None) -> None:
    for status in statuses:
        metrics.observe_api("GET", "/messages", status, 0.01)


def _statistics(metrics: ListenerMetrics, name: str, assigned: int, running: int) -> None:
    stats = Statistics(total_assigned_jobs=assigned, total_running_jobs=running)
    metrics.record_statistics(name, stats)


def _series(cloudwatch, name: str) -> list[tuple[datetime, float, float]]:
    """(minute, Sum, Minimum) of ``name`` for this listener, oldest first."""
    answer = cloudwatch.get_metric_statistics(
        Namespace="GHAScaleSets",
        MetricName=name,
        Dimensions=[{"Name": "Listener", "Value": LISTENER}],
        StartTime=START - timedelta(minutes=1),
        EndTime=START + timedelta(minutes=10),
        Period=60,
        Statistics=["Sum", "Minimum"],
    )
    points = sorted(answer["Datapoints"], key=lambda p: p["Timestamp"])
    return [(p["Timestamp"], p["Sum"], p["Minimum"]) for p in points]


def _sums(cloudwatch, name: str) -> list[float]:
    return [total for _, total, _ in _series(cloudwatch, name)]


def _publishes(metrics: ListenerMetrics, result: str) -> float:
    value = metrics.registry.get_sample_value(
        "gha_listener_cloudwatch_publishes_total", {"result": result}
    )
    return value or 0.0


async def test_each_interval_publishes_what_the_alarms_read(
    running: CloudWatchPublisher, intervals: Intervals, metrics: ListenerMetrics, cloudwatch
) -> None:
    spot: Counter[str] = Counter()
    metrics.attach_spot_fallbacks(lambda: spot)  # the EC2 runtime's counter
    credentials = [credential("app:a", 4000), credential("app:b", 400)]
    metrics.attach_credentials(lambda: credentials)
    # Minute 1: 11 requests, 4 of them errors as the alarm counts them (404 is an answer).
    _api_calls(metrics, *[200] * 6, 404, 500, 503, 429, None)
    metrics.launch_failures.labels("linux-x64", "jit").inc(2)
    spot["AuthFailure.ServiceLinkedRoleCreationNotPermitted"] += 3
    _statistics(metrics, "linux-x64", assigned=5, running=2)
    _statistics(metrics, "gpu", assigned=1, running=3)  # more running than assigned: none wait
    labels = metrics.scale_set_labels("linux-x64")
    metrics.idle_runner_seconds.labels("linux-x64").inc(600)  # 10 warm runner-minutes
    metrics.idle_budget.labels(*labels).set(120)  # the policy may spend 120 an hour
    metrics.job_arrivals.labels("linux-x64").inc(7)
    await intervals.end()
    # Minute 2: only the increase is published; nobody waits any more; app:b is set aside.
    credentials[1] = credential("app:b", 400, usable=False)
    _api_calls(metrics, 200, 200, 200, 502)
    _statistics(metrics, "linux-x64", assigned=2, running=2)
    spot["InsufficientInstanceCapacity"] += 1
    await intervals.end()

    assert _sums(cloudwatch, "Heartbeat") == [1, 1]
    assert _sums(cloudwatch, "ApiRequests") == [11, 4]
    assert _sums(cloudwatch, "ApiErrors") == [4, 1]
    assert _sums(cloudwatch, "RunnerLaunchFailures") == [2, 0]
    assert _sums(cloudwatch, "SpotFallbacks") == [3, 1]
    assert _sums(cloudwatch, "IdleRunnerMinutes") == [10, 0]
    assert _sums(cloudwatch, "IdleBudgetMinutes") == [2, 2]  # an hour's Sum is the budget
    assert _sums(cloudwatch, "JobArrivals") == [7, 0]
    # the credential lowest on budget: 400 of 5,000 left, then none in rotation
    assert _sums(cloudwatch, "CredentialBudgetMinPercent") == [8, 0]
    assert _sums(cloudwatch, "HttpPoolWaitSeconds") == [2.5, 0]
    waiting = _series(cloudwatch, "JobsWaiting")
    assert [(minimum, when.replace(tzinfo=UTC)) for when, _, minimum in waiting] == [
        (3, START + timedelta(minutes=1)),
        (0, START + timedelta(minutes=2)),
    ]
    listed = cloudwatch.list_metrics(Namespace="GHAScaleSets")["Metrics"]
    assert sorted(m["MetricName"] for m in listed) == sorted(NAMES)
    assert all(m["Dimensions"] == [{"Name": "Listener", "Value": LISTENER}] for m in listed)
    assert _publishes(metrics, "ok") == 2
    assert intervals.waits == [60, 60, 60]


async def test_a_failed_publish_is_counted_and_its_counts_go_out_with_the_next(
    running: CloudWatchPublisher,
    intervals: Intervals,
    metrics: ListenerMetrics,
    cloudwatch,
) -> None:
    failures = iter([EndpointConnectionError(endpoint_url="https://monitoring.example")])

    def drop_first_request(**_: Any) -> None:
        if (failure := next(failures, None)) is not None:
            raise failure

    cloudwatch.meta.events.register("before-send.cloudwatch.PutMetricData", drop_first_request)
    _api_calls(metrics, 200, 500)
    metrics.launch_failures.labels("linux-x64", "launch").inc()
    await intervals.end()
    assert _publishes(metrics, "failed") == 1
    assert _series(cloudwatch, "ApiRequests") == []

    _api_calls(metrics, 200)
    await intervals.end()

    assert _publishes(metrics, "ok") == 1
    assert _sums(cloudwatch, "ApiRequests") == [3]
    assert _sums(cloudwatch, "ApiErrors") == [1]
    assert _sums(cloudwatch, "RunnerLaunchFailures") == [1]
    assert _sums(cloudwatch, "Heartbeat") == [1]  # the failed minute's heartbeat is not resent


async def test_an_unreachable_endpoint_never_stops_the_publisher(
    aws: str, metrics: ListenerMetrics, intervals: Intervals, unused_tcp_port: int
) -> None:
    publisher = CloudWatchPublisher(
        CloudWatchConfig(listener_name=LISTENER),
        AwsConfig(region=AWS_REGION, endpoint_url=f"http://127.0.0.1:{unused_tcp_port}"),
        metrics,
        clock=intervals.clock,
        wait=intervals.wait,
    )
    task = asyncio.create_task(publisher.run())
    await intervals.started()
    for _ in range(2):
        await intervals.end()
    assert not task.done()
    assert _publishes(metrics, "failed") == 2
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_listener_with_cloudwatch_settings_publishes_its_github_traffic(
    sim, aws: str, cloudwatch, tmp_path
) -> None:
    await create_scale_set(sim, "linux-x64")
    settings = listener_settings(
        sim,
        tmp_path,
        "linux-x64",
        max_runners=2,
        aws={"region": AWS_REGION, "endpoint_url": aws},
        cloudwatch={"listener_name": LISTENER, "interval_seconds": 0.2},
    )

    def published(name: str) -> float:
        answer = cloudwatch.get_metric_statistics(
            Namespace="GHAScaleSets",
            MetricName=name,
            Dimensions=[{"Name": "Listener", "Value": LISTENER}],
            StartTime=datetime.now(UTC) - timedelta(minutes=5),
            EndTime=datetime.now(UTC) + timedelta(minutes=1),
            Period=60,
            Statistics=["Sum"],
        )
        return sum(p["Sum"] for p in answer["Datapoints"])

    async with running_listener(settings, runtime=InProcessRuntime()):
        await wait_for(
            lambda: published("Heartbeat") >= 2 and published("ApiRequests") > 0,
            10,
            "heartbeats and API request counts in CloudWatch",
        )
    assert published("ApiErrors") == 0
