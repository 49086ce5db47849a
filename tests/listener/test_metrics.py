"""Metric names, labels and sources (API observer, runtime call counter, job timestamps)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from prometheus_client import generate_latest

from gha_scalesets.listener.metrics import ListenerMetrics
from gha_scalesets.scaleset import JobCompleted, JobStarted, Statistics

JIT = "_apis/runtime/runnerscalesets/{scaleSetId}/generatejitconfig"
MQ = "{messageQueueUrl}"


def sample(metric: str, value: float, **labels: str) -> str:
    """A line of the text exposition (labels come out sorted by name)."""
    rendered = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{rendered}}} {float(value)}"


def test_metrics_follow_arc_names_and_count_our_calls() -> None:
    metrics = ListenerMetrics("https://github.com/acme/app")
    calls: Counter[str] = Counter({"ec2:DescribeInstances": 2})
    metrics.attach_cloud_calls(lambda: calls)
    calls["ec2:RunInstances"] += 1  # read at scrape time, not at registration
    spot: Counter[str] = Counter()
    metrics.attach_spot_fallbacks(lambda: spot)
    spot["MaxSpotInstanceCountExceeded"] += 4

    metrics.observe_api(
        "POST", "_apis/runtime/runnerscalesets/{scaleSetId}/generatejitconfig", 200, 0.02
    )
    metrics.observe_api("GET", "{messageQueueUrl}", None, 0.5)
    metrics.record_statistics("linux", Statistics(total_assigned_jobs=7, total_busy_runners=3))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    started = JobStarted(
        owner_name="acme",
        repository_name="app",
        job_display_name="build",
        event_name="push",
        scale_set_assign_time=t0,
        runner_assign_time=t0 + timedelta(seconds=4),
    )
    metrics.record_job_started(started)
    completed = JobCompleted(
        owner_name="acme",
        repository_name="app",
        job_display_name="build",
        event_name="push",
        runner_assign_time=t0 + timedelta(seconds=4),
        finish_time=t0 + timedelta(seconds=64),
    )
    metrics.record_job_completed(completed, "succeeded")

    text = generate_latest(metrics.registry).decode()
    scope = {"enterprise": "", "organization": "acme", "repository": "app"}
    job = {**scope, "job_name": "build", "event_name": "push"}
    expected = [
        sample("gha_assigned_jobs", 7, **scope, name="linux"),
        sample("gha_busy_runners", 3, **scope, name="linux"),
        sample("gha_started_jobs_total", 1, **job),
        sample("gha_completed_jobs_total", 1, **job, job_result="succeeded"),
        sample("gha_job_startup_duration_seconds_sum", 4, **job),
        sample("gha_job_execution_duration_seconds_sum", 60, **job, job_result="succeeded"),
        sample("gha_listener_api_requests_total", 1, method="POST", route=JIT, status="200"),
        sample("gha_listener_api_requests_total", 1, method="GET", route=MQ, status="error"),
        sample("gha_listener_cloud_api_calls_total", 2, runtime_call="ec2:DescribeInstances"),
        sample("gha_listener_cloud_api_calls_total", 1, runtime_call="ec2:RunInstances"),
        sample("gha_listener_spot_fallbacks_total", 4, reason="MaxSpotInstanceCountExceeded"),
    ]
    assert [line for line in expected if line not in text] == []


def test_listeners_do_not_share_metrics() -> None:
    first, second = ListenerMetrics("https://github.com/a"), ListenerMetrics("https://github.com/b")
    first.observe_api("GET", "x", 200, 0.1)
    assert (
        second.registry.get_sample_value(
            "gha_listener_api_requests_total", {"method": "GET", "route": "x", "status": "200"}
        )
        is None
    )
