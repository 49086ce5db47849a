"""``python -m gha_scalesets.components.iam_doc``: docs/runtimes.md's IAM tables, from the policies.

Each table between ``<!-- iam-table: <role> -->`` and ``<!-- /iam-table -->`` is rendered from a
policy document of :mod:`components.iam`, built for a sample deployment and written with
placeholders (``<region>``, ``<subnet id>``, ...) where the stack fills in its own values.
tests/components/test_iam_doc.py deploys the component under Pulumi mocks and checks that its
roles' policies, given the same placeholders, are these documents. ``--check`` writes nothing
and exits 1 when the tables are stale.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gha_scalesets.components import iam
from gha_scalesets.components.aws_scope import AwsScope

DOC = Path(__file__).resolve().parents[1] / "docs" / "runtimes.md"
_TABLE = re.compile(
    r"(<!-- iam-table: (?P<role>[\w-]+)[^>]*-->\n)(?P<body>.*?)(<!-- /iam-table -->)", re.DOTALL
)
HEADER = "| Sid | Effect | Actions | Resources | Conditions |\n|---|---|---|---|---|\n"

# The sample deployment (``SAMPLE``: its values, by what they are) and what the docs show in
# place of each (``SHOWN``); ``*_TOKEN`` values appear inside ARNs and names.
SCOPE = AwsScope(partition="aws", region="eu-west-1", account_id="123456789012")
SAMPLE = {
    "table": "arn:aws:dynamodb:eu-west-1:123456789012:table/ci-runners",
    "queue": "arn:aws:sqs:eu-west-1:123456789012:ci-events",
    "secret": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ci-github-AbCdEf",
    "key": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-0000-1111-2222-333344445555",
    "runner_role": "arn:aws:iam::123456789012:role/ci-runner",
    "execution_role": "arn:aws:iam::123456789012:role/ci-task-execution",
    "listener_logs": "arn:aws:logs:eu-west-1:123456789012:log-group:/gha-scalesets/dev/ci/listener",
    "runner_logs": "arn:aws:logs:eu-west-1:123456789012:log-group:/gha-scalesets/dev/ci/runners",
    "prefix_token": "/gha-scalesets/dev/ci/jit",
    "template_token": "lt-0123456789abcdef0",
    "runner_group_token": "sg-0cccccccccccccccc",
    "cluster_token": "ci-cluster",
    "family_token": "gha-dev-ci-runner",
}
SHOWN = {
    "table": "arn:aws:dynamodb:<region>:<account>:table/<runner table>",
    "queue": "arn:aws:sqs:<region>:<account>:<state events queue>",
    "secret": "arn:aws:secretsmanager:<region>:<account>:secret:<github credential>",
    "key": "arn:aws:kms:<region>:<account>:key/<key>",
    "runner_role": "<runner role ARN>",
    "execution_role": "<task execution role ARN>",
    "listener_logs": "<listener log group ARN>",
    "runner_logs": "<runner log group ARN>",
    "prefix_token": "<ssm prefix>",
    "template_token": "<runner launch template>",
    "runner_group_token": "<runner security group>",
    "cluster_token": "<cluster>",
    "family_token": "<runner task family>",
    "subnet": "<each subnet id>",
    "instance_type": "<each runner instance type>",
    "scale_set_id": "<each scale set id>",
    "account": "<account>",
    "region": "<region>",
}
SUBNETS = ("subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2")
INSTANCE_TYPES = ("m7i.large", "m6i.large")
SCALE_SET_IDS = (7, 8)


def placeholders(
    values: Mapping[str, str],
    *,
    subnets: Sequence[str],
    instance_types: Sequence[str],
    scale_set_ids: Sequence[int],
    account: str,
    region: str,
) -> tuple[dict[str, str], dict[str, str]]:
    """(parts of strings, whole strings) of a deployment to replace by what the docs show."""
    parts = {value: SHOWN[kind] for kind, value in values.items()}
    parts |= {subnet: SHOWN["subnet"] for subnet in subnets}
    parts |= {account: SHOWN["account"], region: SHOWN["region"]}
    whole = {t: SHOWN["instance_type"] for t in instance_types}
    whole |= {str(i): SHOWN["scale_set_id"] for i in scale_set_ids}
    return parts, whole


def normalize(document: Any, substrings: Mapping[str, str], exact: Mapping[str, str]) -> Any:
    """``document`` with whole strings replaced by ``exact`` and parts of strings by
    ``substrings`` (longest first); lists lose the repeats this makes."""
    if isinstance(document, dict):
        return {k: normalize(v, substrings, exact) for k, v in document.items()}
    if isinstance(document, list):
        items = [normalize(v, substrings, exact) for v in document]
        return [v for i, v in enumerate(items) if v not in items[:i]]
    if isinstance(document, str):
        if document in exact:
            return exact[document]
        for concrete in sorted(substrings, key=len, reverse=True):
            document = document.replace(concrete, substrings[concrete])
    return document


def sample_policies() -> dict[str, dict[str, Any]]:
    """The policy document of each role, as the component renders it for the sample."""
    s, scope = SAMPLE, SCOPE
    cluster = scope.arn("ecs", f"cluster/{s['cluster_token']}")
    core = iam.listener_core(
        scope,
        table_arn=s["table"],
        queue_arn=s["queue"],
        secret_arn=s["secret"],
        kms_key_arn=s["key"],
        ssm_prefix=s["prefix_token"],
    )
    ec2 = iam.ec2_listener(
        scope,
        launch_template_id=s["template_token"],
        instance_types=INSTANCE_TYPES,
        spot=True,
        subnet_ids=SUBNETS,
        security_group_ids=[s["runner_group_token"]],
        runner_role_arn=s["runner_role"],
        scale_set_ids=SCALE_SET_IDS,
        log_group_arn=s["listener_logs"],
    )
    ecs = iam.ecs_listener(
        scope,
        cluster_arn=cluster,
        runner_family=s["family_token"],
        pass_role_arns=[s["runner_role"], s["execution_role"]],
    )
    runner = {
        own: iam.runner_jit_config(
            scope, ssm_prefix=s["prefix_token"], kms_key_arn=s["key"], own_instance_only=own
        )
        for own in (True, False)
    }
    execution = iam.task_execution(
        scope, log_group_arns=[s["listener_logs"], s["runner_logs"]], images=[]
    )
    return {
        "ec2-listener": iam.document(core + ec2),
        "ec2-runner": iam.document(runner[True]),
        "ecs-listener": iam.document(core + ecs),
        "ecs-runner": iam.document(runner[False]),
        "ecs-task-execution": iam.document(execution),
    }


def documented_policies() -> dict[str, dict[str, Any]]:
    """:func:`sample_policies` as the docs show them (placeholders for the stack's values)."""
    parts, whole = placeholders(
        SAMPLE,
        subnets=SUBNETS,
        instance_types=INSTANCE_TYPES,
        scale_set_ids=SCALE_SET_IDS,
        account=SCOPE.account_id,
        region=SCOPE.region,
    )
    return {role: normalize(doc, parts, whole) for role, doc in sample_policies().items()}


def _code(values: Any) -> str:
    items = values if isinstance(values, list) else [values]
    return "<br>".join(f"`{v}`" for v in items)


def _conditions(condition: Mapping[str, Mapping[str, Any]]) -> str:
    return "<br>".join(
        f"{operator}: `{key}` = {_code(value)}"
        for operator, keys in condition.items()
        for key, value in keys.items()
    )


def table(document: Mapping[str, Any]) -> str:
    """One Markdown row per statement of ``document``."""
    rows = [
        f"| {s['Sid']} | {s['Effect']} | {_code(s['Action'])} | {_code(s['Resource'])}"
        f" | {_conditions(s.get('Condition', {})) or '-'} |"
        for s in document["Statement"]
    ]
    return HEADER + "\n".join(rows) + "\n"


def render(doc: str, policies: Mapping[str, Mapping[str, Any]]) -> str:
    """``doc`` with every IAM table replaced by the one rendered from ``policies``."""

    def replace(match: re.Match[str]) -> str:
        role = match["role"]
        if role not in policies:
            raise ValueError(f"no policy for the IAM table {role!r}; known: {sorted(policies)}")
        return f"{match[1]}{table(policies[role])}{match[4]}"

    return _TABLE.sub(replace, doc)


def main(argv: list[str] | None = None) -> int:
    """Regenerate (or check) the IAM tables of the document; 1 when ``--check`` finds them
    stale."""
    parser = argparse.ArgumentParser(
        prog="python -m gha_scalesets.components.iam_doc",
        description="Regenerate the IAM tables of docs/runtimes.md from the policies.",
    )
    parser.add_argument("--doc", type=Path, default=DOC, help="the Markdown file")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a table is stale"
    )
    parser.add_argument(
        "--show", action="store_true", help="print the policy documents as JSON instead"
    )
    args = parser.parse_args(argv)
    policies = documented_policies()
    if args.show:
        print(json.dumps(policies, indent=2))
        return 0
    current = args.doc.read_text()
    wanted = render(current, policies)
    if args.check:
        if wanted != current:
            print(f"{args.doc.name}: the IAM tables are stale; run {parser.prog}")
            return 1
        return 0
    args.doc.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
