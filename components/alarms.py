"""CloudWatch alarms of an AWS listener, wired to the user's alarm actions (SNS topics, ...).

The listener's own health comes from metrics it publishes with ``PutMetricData`` in namespace
``GHAScaleSets`` with dimension ``Listener`` (names in :data:`LISTENER_METRICS`); throttling and
dead letters come from AWS's own DynamoDB and SQS metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from gha_scalesets.components.args import AlarmThresholds
from gha_scalesets.components.naming import POOL_WAIT_ALARM_SECONDS, ListenerNames
from gha_scalesets.contract.names import METRICS_DIMENSION, METRICS_NAMESPACE

LISTENER_METRICS = {
    "Heartbeat": "1 per minute while the listener's poll loop runs (Sum)",
    "ApiRequests": "HTTP requests to GitHub per minute (Sum)",
    "ApiErrors": "of those, 5xx, 429 and requests with no answer (Sum)",
    "JobsWaiting": "jobs assigned to a scale set but not running yet (Minimum over the minute)",
    "RunnerLaunchFailures": "runners whose JIT config or launch failed (Sum)",
    "SpotFallbacks": "runners launched on-demand although spot is configured (Sum)",
    "ActiveScaleSets": "scale sets the publishing replica serves as the active one (Sum)",
    "HttpPoolWaitSeconds": "the longest wait for a free connection to GitHub (Maximum)",
    "IdleRunnerMinutes": "warm runner-minutes (beyond the assigned jobs, booting or idle) (Sum)",
    "IdleBudgetMinutes": "what the warm-capacity policies may spend, per minute (Sum: per hour)",
    "CredentialBudgetMinPercent": "the lowest share of its hourly rate limit any GitHub "
    "credential has left, 0 for one set aside (Minimum)",
}
# Published for dashboards (forecast vs. actual demand), read by no alarm.
DASHBOARD_METRICS = {
    "WarmRunners": "runners beyond the assigned jobs, at publish time (Maximum)",
    "JobArrivals": "jobs assigned to the scale sets (Sum)",
    "ForecastArrivals": "job arrivals per minute the adaptive policies expect (Average)",
}

_MINUTE = 60


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: its key (the name suffix and output key) and its MetricAlarm arguments."""

    key: str
    description: str
    settings: dict[str, Any]


def _listener_metric(metric: str, stat: str, listener_id: str, period: int) -> dict[str, Any]:
    return {
        "namespace": METRICS_NAMESPACE,
        "metric_name": metric,
        "dimensions": {METRICS_DIMENSION: listener_id},
        "statistic": stat,
        "period": period,
    }


def _query(query_id: str, namespace: str, metric: str, dims: dict[str, Any], period: int) -> Any:
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=query_id,
        return_data=False,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace=namespace, metric_name=metric, dimensions=dims, stat="Sum", period=period
        ),
    )


def _idle_cost(listener_id: str, thresholds: AlarmThresholds) -> AlarmSpec:
    own = {METRICS_DIMENSION: listener_id}
    hour = 60 * _MINUTE
    if thresholds.idle_runner_minutes_per_hour is not None:
        limit = thresholds.idle_runner_minutes_per_hour
        return AlarmSpec(
            "idle-runner-minutes",
            f"Warm runners idled more than {limit} runner-minutes within an hour",
            {
                **_listener_metric("IdleRunnerMinutes", "Sum", listener_id, hour),
                "comparison_operator": "GreaterThanThreshold",
                "threshold": limit,
                "evaluation_periods": 1,
                "treat_missing_data": "notBreaching",
            },
        )
    return AlarmSpec(
        "idle-runner-minutes",
        "Warm runners idled more than 20 % above what the warm-capacity policies may spend"
        " within an hour (runners that take no job, or a policy spending past its cap)",
        {
            "metric_queries": [
                _query("idle", METRICS_NAMESPACE, "IdleRunnerMinutes", own, hour),
                _query("budget", METRICS_NAMESPACE, "IdleBudgetMinutes", own, hour),
                _expression("FILL(idle, 0) - 1.2 * FILL(budget, 0)", "idle minutes over budget"),
            ],
            "comparison_operator": "GreaterThanThreshold",
            "threshold": 10,
            "evaluation_periods": 1,
            "treat_missing_data": "notBreaching",
        },
    )


def _expression(expression: str, label: str) -> Any:
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id="e1", expression=expression, label=label, return_data=True
    )


def alarm_specs(
    listener_id: str,
    table_name: pulumi.Input[str],
    dead_letter_queue_name: pulumi.Input[str],
    thresholds: AlarmThresholds,
    *,
    scale_sets: int,
    spot: bool = False,
) -> list[AlarmSpec]:
    """The alarms of one listener (docs/components.md, "Alarms and the metrics they read": why);
    ``spot``: its runners are meant to run on spot capacity."""
    own = {METRICS_DIMENSION: listener_id}
    table = {"TableName": table_name}
    return [
        AlarmSpec(
            "listener-down",
            "No heartbeat from the listener for 5 minutes: it is down or cannot reach CloudWatch",
            {
                **_listener_metric("Heartbeat", "Sum", listener_id, _MINUTE),
                "comparison_operator": "LessThanThreshold",
                "threshold": 1,
                "evaluation_periods": 5,
                "treat_missing_data": "breaching",
            },
        ),
        AlarmSpec(
            "no-leader",
            "For 3 minutes fewer scale sets had an active listener replica than configured",
            {
                # Every replica publishes once a minute: the sum is the scale sets led.
                **_listener_metric("ActiveScaleSets", "Sum", listener_id, _MINUTE),
                "comparison_operator": "LessThanThreshold",
                "threshold": scale_sets,
                "evaluation_periods": 3,
                "treat_missing_data": "breaching",
            },
        ),
        AlarmSpec(
            "http-pool-wait",
            f"For 3 minutes requests waited over {POOL_WAIT_ALARM_SECONDS:g} s for a free "
            "connection to GitHub: raise capacity.api_connections or spread the scale sets "
            "over more replicas",
            {
                **_listener_metric("HttpPoolWaitSeconds", "Maximum", listener_id, _MINUTE),
                "comparison_operator": "GreaterThanThreshold",
                "threshold": POOL_WAIT_ALARM_SECONDS,
                "evaluation_periods": 3,
                "treat_missing_data": "notBreaching",
            },
        ),
        AlarmSpec(
            "api-error-rate",
            f"More than {thresholds.api_error_rate_percent}% of GitHub API requests failed",
            {
                "metric_queries": [
                    _query("requests", METRICS_NAMESPACE, "ApiRequests", own, 5 * _MINUTE),
                    _query("errors", METRICS_NAMESPACE, "ApiErrors", own, 5 * _MINUTE),
                    _expression("IF(requests > 0, 100 * errors / requests, 0)", "error %"),
                ],
                "comparison_operator": "GreaterThanThreshold",
                "threshold": thresholds.api_error_rate_percent,
                "evaluation_periods": 3,
                "treat_missing_data": "notBreaching",
            },
        ),
        AlarmSpec(
            "jobs-waiting",
            f"Jobs have waited for a runner for {thresholds.job_wait_minutes} minutes",
            {
                **_listener_metric("JobsWaiting", "Minimum", listener_id, _MINUTE),
                "comparison_operator": "GreaterThanThreshold",
                "threshold": 0,
                "evaluation_periods": thresholds.job_wait_minutes,
                "treat_missing_data": "notBreaching",
            },
        ),
        AlarmSpec(
            "runner-launch-failures",
            f"{thresholds.launch_failures} or more runner launches failed within 10 minutes",
            {
                **_listener_metric("RunnerLaunchFailures", "Sum", listener_id, 10 * _MINUTE),
                "comparison_operator": "GreaterThanOrEqualToThreshold",
                "threshold": thresholds.launch_failures,
                "evaluation_periods": 1,
                "treat_missing_data": "notBreaching",
            },
        ),
        *([_spot_unavailable(listener_id)] if spot else []),
        AlarmSpec(
            "credential-budget-low",
            f"A GitHub credential had less than {thresholds.credential_budget_percent}% of its"
            " rate limit left, or was set aside (refused by GitHub), for 5 minutes",
            {
                **_listener_metric("CredentialBudgetMinPercent", "Minimum", listener_id, _MINUTE),
                "comparison_operator": "LessThanThreshold",
                "threshold": thresholds.credential_budget_percent,
                "evaluation_periods": 5,
                "treat_missing_data": "notBreaching",
            },
        ),
        AlarmSpec(
            "table-throttling",
            "DynamoDB throttled requests to the runner registry table",
            {
                "metric_queries": [
                    _query("reads", "AWS/DynamoDB", "ReadThrottleEvents", table, 5 * _MINUTE),
                    _query("writes", "AWS/DynamoDB", "WriteThrottleEvents", table, 5 * _MINUTE),
                    _expression("FILL(reads, 0) + FILL(writes, 0)", "throttle events"),
                ],
                "comparison_operator": "GreaterThanThreshold",
                "threshold": 0,
                "evaluation_periods": 1,
                "treat_missing_data": "notBreaching",
            },
        ),
        _idle_cost(listener_id, thresholds),
        AlarmSpec(
            "dead-letters",
            "State events the listener could not process are in the dead-letter queue",
            {
                "namespace": "AWS/SQS",
                "metric_name": "ApproximateNumberOfMessagesVisible",
                "dimensions": {"QueueName": dead_letter_queue_name},
                "statistic": "Maximum",
                "period": 5 * _MINUTE,
                "comparison_operator": "GreaterThanThreshold",
                "threshold": 0,
                "evaluation_periods": 1,
                "treat_missing_data": "notBreaching",
            },
        ),
    ]


def _spot_unavailable(listener_id: str) -> AlarmSpec:
    # One refusal is weather (a pool ran dry); three ten-minute periods in a row is a cause to
    # find: the spot service-linked role, the spot quota, or pools too few for the burst.
    return AlarmSpec(
        "spot-unavailable",
        "Runners have been launched on-demand instead of spot for 30 minutes: spot keeps"
        " refusing (the listener logs why: 'spot closed to this account', 'launch refused,"
        " trying the next candidate')",
        {
            **_listener_metric("SpotFallbacks", "Sum", listener_id, 10 * _MINUTE),
            "comparison_operator": "GreaterThanThreshold",
            "threshold": 0,
            "evaluation_periods": 3,
            "datapoints_to_alarm": 3,
            "treat_missing_data": "notBreaching",
        },
    )


def create_alarms(
    names: ListenerNames,
    specs: Sequence[AlarmSpec],
    actions: Sequence[pulumi.Input[str]],
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> dict[str, aws.cloudwatch.MetricAlarm]:
    """One MetricAlarm per spec, notifying ``actions`` on alarm and on recovery."""
    return {
        spec.key: aws.cloudwatch.MetricAlarm(
            names.child(spec.key),
            alarm_description=f"gha-scalesets {names.listener_id}: {spec.description}",
            alarm_actions=list(actions),
            ok_actions=list(actions),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=parent),
            **spec.settings,
        )
        for spec in specs
    }
