"""Prometheus alert rules of a Kubernetes listener (the counterpart of the CloudWatch alarms).

The rules use the metrics the listener serves (``listener/metrics.py``) plus ``up`` from the
scrape of its metrics Service; load the ConfigMap's file into Prometheus (or a PrometheusRule).
"""

from __future__ import annotations

from typing import Any

import yaml

from components.args import AlarmThresholds

RULES_FILE = "gha-scalesets.rules.yaml"


def alert_rules(
    namespace: str, service: str, listener_id: str, thresholds: AlarmThresholds
) -> dict[str, Any]:
    """A Prometheus rule file with one group for this listener."""
    ns = f'namespace="{namespace}"'
    labels = {"severity": "warning", "gha_scalesets_listener": listener_id}

    def rule(alert: str, expr: str, duration: str, summary: str) -> dict[str, Any]:
        return {
            "alert": alert,
            "expr": expr,
            "for": duration,
            "labels": labels,
            "annotations": {"summary": summary},
        }

    requests = f"sum(rate(gha_listener_api_requests_total{{{ns}}}[5m]))"
    failed = f'sum(rate(gha_listener_api_requests_total{{{ns},status=~"5..|429|error"}}[5m]))'
    return {
        "groups": [
            {
                "name": f"gha-scalesets-{listener_id}",
                "rules": [
                    rule(
                        "GhaListenerDown",
                        f'absent(up{{{ns},service="{service}"}} == 1)',
                        "5m",
                        "The listener's metrics endpoint has not been scraped for 5 minutes",
                    ),
                    rule(
                        "GhaListenerNoLeader",
                        f"sum by (name) (gha_listener_leader{{{ns}}}) < 1",
                        "1m",
                        "No listener replica has held scale set {{ $labels.name }} for a"
                        " minute (a takeover takes seconds)",
                    ),
                    rule(
                        "GhaListenerNoSession",
                        # max: of several replicas only the active one holds the session
                        f"max by (name) (gha_listener_session_ready{{{ns}}}) < 1",
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
                        "GhaJobsWaiting",
                        # the active replica's statistics: a standby's are stale or absent
                        f"max by (name) ((gha_assigned_jobs{{{ns}}} - gha_running_jobs{{{ns}}})"
                        f" * gha_listener_leader{{{ns}}}) > 0",
                        f"{thresholds.job_wait_minutes}m",
                        "Jobs of {{ $labels.name }} have waited for a runner for"
                        f" {thresholds.job_wait_minutes} minutes",
                    ),
                    rule(
                        "GhaRunnerLaunchFailures",
                        "sum by (name) (increase(gha_listener_launch_failures_total"
                        f"{{{ns}}}[10m])) >= {thresholds.launch_failures}",
                        "0m",
                        f"{thresholds.launch_failures} or more runner launches of"
                        " {{ $labels.name }} failed within 10 minutes",
                    ),
                ],
            }
        ]
    }


def rules_file(rules: dict[str, Any]) -> str:
    return yaml.safe_dump(rules, sort_keys=False)
