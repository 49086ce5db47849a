"""The bad-input table of docs/configuration.md: each wrong input and the exact line it gets.

``tests/bad_input/test_table.py`` tries every case and checks that the documented table is the
one :func:`table` renders from :data:`CASES`; ``python -m tests.bad_input.cases`` rewrites it.
A case changes a valid configuration by paths (``ecs.runnerCpu``, ``scale_sets[0].min_runners``;
None unsets) and names the line the user reads.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STACK = "stack config"
COMPONENT = "ScaleSetListenerArgs"
SCALE_SET = "ScaleSetArgs"
LISTENER = "listener settings"

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
START = "<!-- bad-input-table: generated from tests/bad_input/cases.py; do not edit -->"
END = "<!-- end of bad-input-table -->"


@dataclass(frozen=True)
class Case:
    surface: str
    changes: dict[str, Any]
    message: str
    base: str = ""  # stack config: the example stack; component: the runtime
    plain: tuple[str, ...] = field(default=())  # stack config secrets set without --secret


def _stack(base: str, changes: dict[str, Any], message: str, **kw: Any) -> Case:
    return Case(STACK, changes, message, base, **kw)


def _args(base: str, changes: dict[str, Any], message: str) -> Case:
    return Case(COMPONENT, changes, message, base)


CASES = [
    _stack("ecs", {"alarmTopicARN": "arn:aws:sns:eu-west-1:123456789012:ci-alerts"},
           "alarmTopicARN: unknown key; did you mean alarmTopicArn?"),
    _stack("ecs", {"scaleSets[0].maxRunner": 30},
           "scaleSets[0].maxRunner: unknown key; did you mean scaleSets[0].maxRunners?"),
    _stack("ecs", {"replicas": "two"},
           "replicas: Input should be a valid integer, unable to parse string as an integer"),
    _stack("ecs", {"ecs.runnerCpu": 3000},
           "ecs.runnerCpu: 3000 CPU units is no Fargate size: use one of 256, 512, 1024, 2048,"
           " 4096, 8192, 16384"),
    _stack("ecs", {"ecs.runnerMemory": 1},
           "ecs.runnerMemory: 1 MiB does not go with 2048 CPU units on Fargate: use 4096 to"
           " 16384 in steps of 1024"),
    _stack("k8s", {"k8s.namespace": "Bad_NS!"},
           "k8s.namespace: 'Bad_NS!' is not a Kubernetes namespace name: at most 63 lowercase"
           " letters, digits and '-', starting and ending with a letter or digit"),
    _stack("ec2", {"ec2.runnerVolumeGb": 4},
           "ec2.runnerVolumeGb: 4 must be an integer from 8 to 16384 (GiB of gp3)"),
    _stack("ec2", {"ec2.runnerInstanceTypes": ["m7i large"]},
           "ec2.runnerInstanceTypes[0]: 'm7i large' is not an EC2 instance type (e.g. m7i.large)"),
    _stack("ecs", {"vpcId": None}, "vpcId: required on runtime 'ecs': the VPC of the subnets"),
    _stack("ecs", {"listenerName": "ci runners!"},
           "listenerName: 'ci runners!' must be 1-63 letters, digits, '.', '_' or '-', starting"
           " with a letter or digit (it becomes part of AWS and Kubernetes names)"),
    _stack("ecs", {"scaleSets[0].labels": ["linux,x64"]},
           "scaleSets[0].labels: label 'linux,x64' must not contain a comma (runners read labels"
           " as a comma list)"),
    _stack("ecs", {"githubConfigUrl": "ftp://github.com/acme"},
           "githubConfigUrl: invalid config URL 'ftp://github.com/acme': expected an http(s) URL"
           " such as https://github.com/<org>"),
    _stack("ecs", {"kmsKeyArn": "alias/ci"},
           "kmsKeyArn: 'alias/ci' is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"),
    _stack("ecs", {"logRetentionDays": 10},
           "logRetentionDays: 10 is not a retention CloudWatch Logs accepts (e.g. 7, 14, 30, 90,"
           " 365)"),
    _stack("ecs", {}, "githubToken: stored in plain text: set it with `pulumi config set"
           " --secret githubToken`", plain=("githubToken",)),
    _args("lambda", {}, "runtime: 'lambda' is not supported: use one of ec2, ecs, k8s"),
    _args("ecs", {"subnet_ids": []},
          "subnet_ids: required on runtime 'ecs': private subnets with a route to GitHub and AWS"
          " APIs (NAT gateway or VPC endpoints)"),
    _args("ec2", {"ec2.runner_ami_id": None},
          "ec2.runner_ami_id: required on runtime 'ec2': an AMI with curl, the AWS CLI and the"
          " actions runner in /opt/actions-runner (see docs/components.md, 'What it creates')"),
    _args("ecs", {"ecs.runner_image": None},
          "ecs.runner_image: required: an image with bash, curl, the AWS CLI and the runner"
          " at /home/runner/run.sh (see docs/components.md, 'What it creates')"),
    _args("ecs", {"ecs.cluster_arn": "ci"},
          "ecs.cluster_arn: 'ci' is not an ECS cluster ARN"
          " (arn:aws:ecs:<region>:<account>:cluster/<name>)"),
    _args("ecs", {"replicas": 0},
          "replicas: 0 must be an integer from 1 to 5 (2 gives a hot standby)"),
    _args("ecs", {"github_token": None},
          "github_token: a credential is required: github_token (a PAT with admin:org, repo or"
          " manage_runners:enterprise) or github_app (an App installation)"),
    _args("ecs", {"scale_sets[1].min_runners": 5, "scale_sets[1].max_runners": 2},
          "scale_sets[1].min_runners: 5 is above scale_sets[1].max_runners (2) (scale set"
          " 'ss-gpu'): lower one or raise the other"),
    _args("k8s", {"k8s.provider": None},
          "k8s.provider: runtime 'k8s' needs a Kubernetes provider: K8sOptions(provider=...) or"
          " opts=ResourceOptions(providers={'kubernetes': ...})"),
    _args("k8s", {"k8s.runner_resources": {"requests": {"cpu": "lots"}}},
          "k8s.runner_resources.requests.cpu: 'lots' is not a Kubernetes quantity (e.g. '500m',"
          " '2', '1Gi')"),
    _args("k8s", {"k8s.tolerations": [{"key": "ci", "operator": "Sometimes"}]},
          "k8s.tolerations[0].operator: 'Sometimes' must be Equal or Exists"),
    _args("k8s", {"metrics_port": 70000},
          "metrics_port: 70000 must be an integer from 1 to 65535 (a TCP port)"),
    _args("ecs", {"alarm_thresholds.api_error_rate_percent": 0},
          "alarm_thresholds.api_error_rate_percent: 0 must be above 0 and at most 100"),
    _args("ecs", {"tags": {"aws:team": "ci"}},
          "tags: tag key 'aws:team' must be 1-128 characters, not starting with 'aws:'"),
    Case(SCALE_SET, {"name": ""}, "name: must not be empty"),
    Case(SCALE_SET, {"labels": ["gpu", "GPU"]},
         "labels: label 'GPU' is listed twice (labels are case-insensitive)"),
    Case(SCALE_SET, {"github_config_url": "https://github.com"},
         "github_config_url: invalid config URL 'https://github.com', should point to an"
         " enterprise (https://HOST/enterprises/<slug>), org (https://HOST/<org>), or repository"
         " (https://HOST/<owner>/<repo>)"),
    Case(SCALE_SET, {"github_app": {"client_id": "Iv1.abc", "installation_id": 7}},
         "github_app: give exactly one of github_token or github_app: remove one"),
    Case(SCALE_SET, {"runner_group": " Default"},
         "runner_group: ' Default' must not start or end with whitespace"),
    Case(LISTENER, {"scale_sets[0].max_runner": 3},
         "scale_sets[0].max_runner: unknown key; did you mean scale_sets[0].max_runners?"),
    Case(LISTENER, {"registry": {"type": "dynamodb", "tabel_name": "runners"}},
         "registry.tabel_name: unknown key; did you mean registry.table_name?"),
    Case(LISTENER, {"github_config_url": "https://github.com/a/b/c"},
         "github_config_url: invalid config URL 'https://github.com/a/b/c', should point to an"
         " enterprise (https://HOST/enterprises/<slug>), org (https://HOST/<org>), or repository"
         " (https://HOST/<owner>/<repo>)"),
    Case(LISTENER, {"scale_sets[0].min_runners": 5, "scale_sets[0].max_runners": 2},
         "scale_sets[0]: min_runners (5) is above max_runners (2)"),
    Case(LISTENER, {"credentials": {"token_file": "missing-token"}},
         "credentials: cannot read the token file missing-token: No such file or directory"),
    Case(LISTENER, {"leadership": {"renew_interval_seconds": 5}},
         "leadership: renew_interval_seconds (5.0) must be at most a third of"
         " lease_duration_seconds (10.0)"),
]  # fmt: skip

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def segments(path: str) -> list[str | int]:
    return [name or int(index) for name, index in _SEGMENT.findall(path)]


def set_path(document: Any, path: str, value: Any) -> None:
    """Set (None: remove) the value at ``path`` of a document of dicts and lists, in place."""
    *parents, last = segments(path)
    for part in parents:
        document = document[part]
    if value is None:
        document.pop(last)
    else:
        document[last] = value


def _shown(value: Any, python: bool) -> str:
    if value is None:
        return "None" if python else "(unset)"
    if python:
        return repr(value)
    return value if isinstance(value, str) else json.dumps(value)


def wrong_input(case: Case) -> str:
    python = case.surface in (COMPONENT, SCALE_SET)
    sep = "=" if python else ": "
    given = [f"{path}{sep}{_shown(value, python)}" for path, value in case.changes.items()]
    given += [f"{key} set without --secret" for key in case.plain]
    if case.surface == COMPONENT and case.base not in ("ec2", "ecs", "k8s"):
        given.insert(0, f"runtime={case.base!r}")
    return ", ".join(f"`{g}`" for g in given)


def _where(case: Case) -> str:
    if case.surface == STACK:
        return f"stack config (`Pulumi.example-{case.base}.yaml`)"
    if case.surface == COMPONENT and case.base in ("ec2", "ecs", "k8s"):
        return f"`{COMPONENT}` ({case.base})"
    if case.surface == LISTENER:
        return "listener settings (`check`)"
    return f"`{case.surface}`"


def table(cases: list[Case] = CASES) -> str:
    rows = ["| where | wrong input | the line it gets |", "|---|---|---|"]
    rows += [f"| {_where(c)} | {wrong_input(c)} | `` {c.message} `` |" for c in cases]
    return "\n".join(rows)


def render(doc: str) -> str:
    """``doc`` with the table between the markers generated anew."""
    head, start, rest = doc.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"the document lacks the markers {START!r} ... {END!r}")
    return f"{head}{START}\n{table()}\n{END}{tail}"


if __name__ == "__main__":
    DOC.write_text(render(DOC.read_text()))
    sys.stdout.write(f"{DOC.name}: {len(CASES)} cases\n")
