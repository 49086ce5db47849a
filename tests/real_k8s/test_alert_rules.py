"""Prometheus's own rule tester (``promtool test rules``) on the component's Kubernetes alert rules.

The rule file is the one in the ConfigMap the component declares (run under Pulumi mocks). The
input series carry the labels Prometheus gives what it scrapes from the listener's pod: the
scrape job docs/components.md documents ("Alarms and the metrics they read") goes through ``promtool
check service-discovery``, so Prometheus's own relabeling turns the component's pod into target
labels. Debian's Prometheus is built without Kubernetes service discovery, so the pod reaches
that relabeling as a static target holding the ``__meta_kubernetes_*`` labels Kubernetes
discovery (role ``pod``) gives it.

Every rule the component generates needs an entry in ``CASES``: series that must fire it (with
the alert's labels) and series that must not. Each rule gets its own generated promtool test file.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from gha_scalesets.components import ScaleSetListener
from gha_scalesets.components.prometheus import RULES_FILE
from tests.fixtures.docs import doc_section
from tests.fixtures.pulumi import pulumi_loop
from tests.fixtures.toolchain import require_tool
from tests.support.components import listener_args
from tests.support.pulumi_mocks import Recorder, run

JOB = "kubernetes-pods"
# What the API server would name and address one pod of the listener's Deployment.
TEMPLATE_HASH, POD_SUFFIX, POD_IP = "6d4cf56db6", "x2v9k", "10.0.0.7"
EVAL_TIME = "30m"  # past every rule's `for` and range window
SCALE_SET = {"organization": "acme", "name": "linux-x64"}  # empty labels are dropped on scrape

Series = tuple[str, dict[str, str], str]  # metric, labels beyond the target's, promtool values


@dataclass(frozen=True)
class Case:
    fires: list[Series]
    quiet: list[Series]
    labels: dict[str, str] = field(default_factory=dict)  # the alert's, besides the rule's own


def _requests(ok: int, failed: int) -> list[Series]:
    """GitHub API request counters growing by ``ok`` 200s and ``failed`` 500s a minute."""
    route = {"method": "GET", "route": "/message"}
    return [
        ("gha_listener_api_requests_total", route | {"status": "200"}, f"0+{ok}x40"),
        ("gha_listener_api_requests_total", route | {"status": "500"}, f"0+{failed}x40"),
    ]


def _jobs(assigned: int, running: int) -> list[Series]:
    """Job statistics of the active replica (a standby's do not count)."""
    return [
        ("gha_assigned_jobs", SCALE_SET, f"{assigned}x40"),
        ("gha_running_jobs", SCALE_SET, f"{running}x40"),
        ("gha_listener_leader", SCALE_SET, "1x40"),
    ]


def _idle(warm_runners: int, budget: int) -> list[Series]:
    """Warm runners held (idle runner-seconds growing by 60 per runner a minute) and the
    leader's budget."""
    return [
        ("gha_listener_idle_runner_seconds_total", SCALE_SET, f"0+{60 * warm_runners}x40"),
        ("gha_listener_idle_budget_minutes_per_hour", SCALE_SET, f"{budget}x40"),
    ]


def _launch_failures(values: str) -> list[Series]:
    return [("gha_listener_launch_failures_total", SCALE_SET | {"stage": "launch"}, values)]


def _pool_waits(slow_per_minute: int) -> list[Series]:
    """Wait-for-a-connection histogram of the api lane: 100 requests a minute, of which
    ``slow_per_minute`` waited between 5 and 10 s and the others under a millisecond."""
    fast = 100 - slow_per_minute
    bounds = ("0.001", "0.01", "0.1", "0.5", "1", "5", "10", "30", "+Inf")
    return [
        (
            "gha_listener_http_pool_wait_seconds_bucket",
            {"lane": "api", "le": le},
            f"0+{fast if float(le) <= 5 else 100}x40",
        )
        for le in bounds
    ]


CASES = {
    "GhaListenerDown": Case(
        # Its scrape fails while another listener's pod in the namespace is up.
        fires=[
            ("up", {}, "0x40"),
            ("up", {"pod": f"ci-b-listener-{TEMPLATE_HASH}-{POD_SUFFIX}"}, "1x40"),
        ],
        quiet=[("up", {}, "1x40")],
    ),
    "GhaListenerNoLeader": Case(
        fires=[("gha_listener_leader", SCALE_SET, "0x40")],
        quiet=[("gha_listener_leader", SCALE_SET, "1x40")],
        labels={"name": "linux-x64"},
    ),
    "GhaListenerNoSession": Case(
        fires=[("gha_listener_session_ready", SCALE_SET, "0x40")],
        quiet=[("gha_listener_session_ready", SCALE_SET, "1x40")],
        labels={"name": "linux-x64"},
    ),
    "GhaApiErrorRate": Case(fires=_requests(60, 60), quiet=_requests(600, 6)),  # 50 % vs 1 %
    "GhaJobsWaiting": Case(fires=_jobs(3, 1), quiet=_jobs(3, 3), labels={"name": "linux-x64"}),
    # 12 warm runners (720 idle runner-minutes per hour) against a budget of 300 (cap) and of
    # 600 (1.2 x 600 + 10 = 730 is not exceeded).
    "GhaIdleRunnerCost": Case(
        fires=_idle(12, 300),
        quiet=_idle(12, 600),
        labels={"name": "linux-x64"},
    ),
    "GhaCredentialBudgetLow": Case(
        # 5 % of its hourly budget left (or set aside: 0) vs half of it
        fires=[("gha_listener_credential_budget_ratio", {"credential": "app:a"}, "0.05x40")],
        quiet=[("gha_listener_credential_budget_ratio", {"credential": "app:a"}, "0.5x40")],
        labels={"credential": "app:a"},
    ),
    "GhaHttpPoolWait": Case(fires=_pool_waits(10), quiet=_pool_waits(0), labels={"lane": "api"}),
    "GhaRunnerLaunchFailures": Case(
        fires=_launch_failures("0+1x40"),  # 10 in the last 10 minutes
        quiet=_launch_failures("0x20 1x5 2x14"),  # 2 in the last 10 minutes
        labels={"name": "linux-x64"},
    ),
}


@dataclass(frozen=True)
class Declared:
    rules_text: str
    rules: dict[str, dict[str, Any]]  # by alert name
    deployment: dict[str, Any]  # the listener Deployment's inputs


@pytest.fixture(scope="module")
def declared(_long_lived_objects_frozen: None) -> Declared:
    """The alert rules and the listener Deployment the component declares for runtime k8s."""
    with pulumi_loop():
        recorder = Recorder().install()
        run(lambda: ScaleSetListener("ci", listener_args("k8s")).listener_id)
    text = recorder.one("kubernetes:core/v1:ConfigMap").plain["data"][RULES_FILE]
    (group,) = yaml.safe_load(text)["groups"]
    return Declared(
        text,
        {r["alert"]: r for r in group["rules"]},
        recorder.one("kubernetes:apps/v1:Deployment").plain,
    )


def _sanitized(name: str) -> str:
    """A Kubernetes label or annotation name as Prometheus puts it in a label name."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _pod_targets(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    """Kubernetes discovery's targets of a running pod of ``deployment``: one per port."""
    replica_set = f"{deployment['metadata']['name']}-{TEMPLATE_HASH}"
    name = f"{replica_set}-{POD_SUFFIX}"
    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"] | {"pod-template-hash": TEMPLATE_HASH}
    pod = {
        "__meta_kubernetes_namespace": deployment["metadata"]["namespace"],
        "__meta_kubernetes_pod_name": name,
        "__meta_kubernetes_pod_ip": POD_IP,
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_ready": "true",
        "__meta_kubernetes_pod_controller_kind": "ReplicaSet",
        "__meta_kubernetes_pod_controller_name": replica_set,
    }
    for prefix, values in (("label", labels), ("annotation", template["metadata"]["annotations"])):
        for key, value in values.items():
            pod[f"__meta_kubernetes_pod_{prefix}_{_sanitized(key)}"] = value
            pod[f"__meta_kubernetes_pod_{prefix}present_{_sanitized(key)}"] = "true"
    return [
        {
            "targets": [f"{POD_IP}:{port['containerPort']}"],
            "labels": pod
            | {
                "__meta_kubernetes_pod_container_name": container["name"],
                "__meta_kubernetes_pod_container_port_name": port["name"],
                "__meta_kubernetes_pod_container_port_number": str(port["containerPort"]),
                "__meta_kubernetes_pod_container_port_protocol": port["protocol"],
            },
        }
        for container in template["spec"]["containers"]
        for port in container["ports"]
    ]


def documented_scrape_job() -> dict[str, Any]:
    """The scrape job of docs/components.md, "Alarms and the metrics they read"."""
    section = doc_section("components.md", "## Alarms and the metrics they read")
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    jobs = [j for b in blocks for j in yaml.safe_load(b).get("scrape_configs", [])]
    (job,) = [j for j in jobs if j["job_name"] == JOB]
    return job


@pytest.fixture(scope="module")
def target_labels(declared: Declared, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The labels Prometheus gives the series it scrapes from the listener's pod."""
    job = documented_scrape_job()
    assert "kubernetes_sd_configs" in job
    del job["kubernetes_sd_configs"]
    job["static_configs"] = _pod_targets(declared.deployment)
    config = tmp_path_factory.mktemp("scrape") / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": [job]}))
    # Static targets are delivered at once; the timeout is how long promtool collects.
    done = _promtool("check", "service-discovery", "--timeout=2s", str(config), JOB)
    targets = json.loads(done.stdout)
    assert len(targets) == 1, f"the scrape job keeps {len(targets)} targets of the pod, not 1"
    return {k: v for k, v in targets[0]["labels"].items() if not k.startswith("__")}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(require_tool("promtool")), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"promtool {args[0]} {args[1]} failed:\n{done.stdout}{done.stderr}"
    return done


def _series(metric: str, labels: dict[str, str], values: str) -> dict[str, str]:
    matchers = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
    return {"series": f"{metric}{{{matchers}}}", "values": values}


def _expanded(summary: str, labels: dict[str, str]) -> str:
    """``summary`` as Prometheus renders its ``{{ $labels.x }}`` references."""
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], summary)


def rule_test_file(alert: str, rule: dict[str, Any], target: dict[str, str]) -> dict[str, Any]:
    """A promtool test file: ``CASES[alert]``'s series fire ``alert``, its quiet ones do not."""
    case = CASES[alert]

    def test(name: str, series: list[Series], expected: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "name": f"{alert} {name}",
            "interval": "1m",
            "input_series": [_series(m, target | labels, v) for m, labels, v in series],
            "alert_rule_test": [
                {"eval_time": EVAL_TIME, "alertname": alert, "exp_alerts": expected}
            ],
        }

    labels = rule["labels"] | case.labels
    fired = {
        "exp_labels": labels,
        "exp_annotations": {k: _expanded(v, labels) for k, v in rule["annotations"].items()},
    }
    return {
        "rule_files": [RULES_FILE],
        "evaluation_interval": "1m",
        "tests": [test("fires", case.fires, [fired]), test("stays quiet", case.quiet, [])],
    }


def test_every_generated_rule_has_a_firing_and_a_quiet_case(declared: Declared) -> None:
    assert sorted(declared.rules) == sorted(CASES)


def test_scrape_labels_are_those_the_rules_select_on(target_labels: dict[str, str]) -> None:
    pod = f"ci-listener-{TEMPLATE_HASH}-{POD_SUFFIX}"
    assert target_labels["namespace"] == "ci-runners"
    assert (target_labels["pod"], target_labels["job"]) == (pod, JOB)
    assert "service" not in target_labels


@pytest.mark.parametrize("alert", sorted(CASES))
def test_promtool_fires_the_rule_only_on_its_firing_series(
    alert: str, declared: Declared, target_labels: dict[str, str], tmp_path: Path
) -> None:
    assert alert in declared.rules, f"the component generates no rule {alert}"
    (tmp_path / RULES_FILE).write_text(declared.rules_text)
    tests = tmp_path / "tests.yaml"
    tests.write_text(yaml.safe_dump(rule_test_file(alert, declared.rules[alert], target_labels)))

    done = _promtool("test", "rules", str(tests))

    assert "SUCCESS" in done.stdout
