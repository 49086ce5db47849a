"""Prometheus alert rules of a Kubernetes listener (the counterpart of the CloudWatch alarms).

The rules use the metrics the listener serves (``listener/metrics.py``) plus ``up``, as scraped
per pod: the listener's pod carries the ``prometheus.io/scrape`` and ``/port`` annotations, and
an annotation-driven ``kubernetes-pods`` job labels its series with ``namespace`` and ``pod``
(docs/components.md, "Alarms and the metrics they read", shows the job). Load the ConfigMap's
file into Prometheus (or a PrometheusRule).
"""

from __future__ import annotations

from typing import Any

import yaml

from gha_scalesets.components.args import AlarmThresholds
from gha_scalesets.components.naming import POOL_WAIT_ALARM_SECONDS

RULES_FILE = "gha-scalesets.rules.yaml"

# The API server names a Deployment's pods ``<deployment>-<template hash>-<5 random>``: the
# hash is at most 10 characters, and the part before the random suffix is cut at 58.
_NAME_BASE_LIMIT = 58
_HASH = "[a-z0-9]{1,10}-?"
_RANDOM = "[a-z0-9]{5}"


def pod_name_pattern(deployment: str) -> str:
    """An RE2 pattern matching the names of ``deployment``'s pods and of no other Deployment's
    (unless both names share the first 58 characters, which Kubernetes cuts alike)."""
    known = f"{deployment}-"
    if len(known) >= _NAME_BASE_LIMIT:
        return _literal(known[:_NAME_BASE_LIMIT]) + _RANDOM
    # The hash may itself be cut (with or without its dash) when the name is long.
    return _literal(known) + _HASH + _RANDOM


def _literal(name: str) -> str:
    """``name`` as an RE2 literal: Kubernetes names are letters, digits, '-' and '.'."""
    return name.replace(".", "[.]")


def scrape_selector(namespace: str, deployment: str) -> str:
    """PromQL label matchers for the series scraped from the pods of ``deployment``."""
    return f'namespace="{namespace}",pod=~"{pod_name_pattern(deployment)}"'


def alert_rules(
    namespace: str, deployment: str, listener_id: str, thresholds: AlarmThresholds
) -> dict[str, Any]:
    """A Prometheus rule file with one group for the listener run by ``deployment``."""
    sel = scrape_selector(namespace, deployment)
    labels = {"severity": "warning", "gha_scalesets_listener": listener_id}

    def rule(alert: str, expr: str, duration: str, summary: str) -> dict[str, Any]:
        return {
            "alert": alert,
            "expr": expr,
            "for": duration,
            "labels": labels,
            "annotations": {"summary": summary},
        }

    requests = f"sum(rate(gha_listener_api_requests_total{{{sel}}}[5m]))"
    failed = f'sum(rate(gha_listener_api_requests_total{{{sel},status=~"5..|429|error"}}[5m]))'
    pool_wait = (
        "histogram_quantile(0.99, sum by (le, lane) "
        f"(rate(gha_listener_http_pool_wait_seconds_bucket{{{sel}}}[5m])))"
    )
    return {
        "groups": [
            {
                "name": f"gha-scalesets-{listener_id}",
                "rules": [
                    rule(
                        "GhaListenerDown",
                        f"absent(up{{{sel}}} == 1)",
                        "5m",
                        "The listener's metrics endpoint has not been scraped for 5 minutes",
                    ),
                    rule(
                        "GhaListenerNoLeader",
                        f"sum by (name) (gha_listener_leader{{{sel}}}) < 1",
                        "1m",
                        "No listener replica has held scale set {{ $labels.name }} for a"
                        " minute (a takeover takes seconds)",
                    ),
                    rule(
                        "GhaListenerNoSession",
                        # max: of several replicas only the active one holds the session
                        f"max by (name) (gha_listener_session_ready{{{sel}}}) < 1",
                        "5m",
                        "Scale set {{ $labels.name }} has had no message session for 5 minutes",
                    ),
                    rule(
                        "GhaApiErrorRate",
                        f"100 * {failed} / {requests} > {thresholds.api_error_rate_percent}",
                        "10m",
                        f"More than {thresholds.api_error_rate_percent}% of GitHub API"
                        " requests failed",
                    ),
                    rule(
                        "GhaHttpPoolWait",
                        f"{pool_wait} > {POOL_WAIT_ALARM_SECONDS:g}",
                        "5m",
                        "1 % of the listener's {{ $labels.lane }} requests waited over"
                        f" {POOL_WAIT_ALARM_SECONDS:g} s for a free connection to GitHub: raise"
                        " capacity.api_connections or spread the scale sets over more replicas",
                    ),
                    rule(
                        "GhaJobsWaiting",
                        # the active replica's statistics: a standby's are stale or absent
                        f"max by (name) ((gha_assigned_jobs{{{sel}}} - gha_running_jobs{{{sel}}})"
                        f" * gha_listener_leader{{{sel}}}) > 0",
                        f"{thresholds.job_wait_minutes}m",
                        "Jobs of {{ $labels.name }} have waited for a runner for"
                        f" {thresholds.job_wait_minutes} minutes",
                    ),
                    rule(
                        "GhaIdleRunnerCost",
                        f"sum by (name) (rate(gha_listener_idle_runner_seconds_total{{{sel}}}"
                        f"[30m])) * 60 > {_idle_limit(sel, thresholds)}",
                        "10m",
                        "Warm runners of {{ $labels.name }} idle more runner-minutes per hour"
                        " than its warm-capacity policy may spend (runners taking no job, or"
                        " a policy past its cap)",
                    ),
                    rule(
                        "GhaCredentialBudgetLow",
                        "min by (credential) (gha_listener_credential_budget_ratio"
                        f"{{{sel}}}) < {thresholds.credential_budget_percent / 100:g}",
                        "5m",
                        "GitHub credential {{ $labels.credential }} has had less than"
                        f" {thresholds.credential_budget_percent:g}% of its rate limit left, or"
                        " been set aside, for 5 minutes",
                    ),
                    rule(
                        "GhaRunnerLaunchFailures",
                        "sum by (name) (increase(gha_listener_launch_failures_total"
                        f"{{{sel}}}[10m])) >= {thresholds.launch_failures}",
                        "0m",
                        f"{thresholds.launch_failures} or more runner launches of"
                        " {{ $labels.name }} failed within 10 minutes",
                    ),
                ],
            }
        ]
    }


def _idle_limit(sel: str, thresholds: AlarmThresholds) -> str:
    """The idle runner-minutes per hour above which GhaIdleRunnerCost fires: the threshold,
    else 20 % over the budget each scale set's leader exports, plus 10 minutes."""
    if thresholds.idle_runner_minutes_per_hour is not None:
        return str(thresholds.idle_runner_minutes_per_hour)
    return (
        f"on (name) (1.2 * max by (name) (gha_listener_idle_budget_minutes_per_hour{{{sel}}}) + 10)"
    )


def rules_file(rules: dict[str, Any]) -> str:
    """``rules`` as the YAML text of a Prometheus rule file."""
    return yaml.safe_dump(rules, sort_keys=False)
