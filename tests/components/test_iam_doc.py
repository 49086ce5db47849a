"""docs/runtimes.md's IAM tables are the policies the component renders.

Two links: the tables are rendered from ``iam_doc.documented_policies()`` (the docs test), and
those documents are, placeholder for placeholder, the RolePolicy documents the component
declares under Pulumi mocks for each runtime (so a policy change without a docs change fails).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gha_scalesets.components import iam_doc
from tests.support.components import SUBNETS, policy
from tests.support.pulumi_mocks import ACCOUNT, REGION, SCALE_SET_TYPE

ROLES = {
    "ec2": {"ec2-listener": "ci-listener", "ec2-runner": "ci-runner"},
    "ecs": {
        "ecs-listener": "ci-listener",
        "ecs-runner": "ci-runner",
        "ecs-task-execution": "ci-task-execution",
    },
}
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def test_the_docs_show_the_iam_table_of_every_role() -> None:
    committed = iam_doc.DOC.read_text()
    policies = iam_doc.documented_policies()
    assert iam_doc.render(committed, policies) == committed
    assert sorted(re.findall(r"<!-- iam-table: ([\w-]+)", committed)) == sorted(policies)


def test_a_stale_table_is_rewritten_and_the_check_says_so(tmp_path: Path) -> None:
    doc = tmp_path / "runtimes.md"
    doc.write_text(
        "before\n<!-- iam-table: ecs-runner -->\n| stale |\n<!-- /iam-table -->\nafter\n"
    )

    assert iam_doc.main(["--doc", str(doc), "--check"]) == 1
    assert iam_doc.main(["--doc", str(doc)]) == 0

    text = doc.read_text()
    assert text.startswith("before\n<!-- iam-table: ecs-runner -->\n| Sid |")
    assert "| ReadOwnJitConfig | Allow | `ssm:DeleteParameter`<br>`ssm:GetParameter` |" in text
    assert text.endswith("<!-- /iam-table -->\nafter\n")
    assert iam_doc.main(["--doc", str(doc), "--check"]) == 0


def _rendered(recorder, runtime: str, outputs: dict) -> dict[str, dict]:
    """The component's role policies with the docs' placeholders for this deployment."""

    def arn(typ: str, name: str) -> str:
        return recorder.one(typ, name).state["arn"]

    values = {
        "table": recorder.one("aws:dynamodb/table:Table").state["arn"],
        "queue": arn("aws:sqs/queue:Queue", "ci-events"),
        "secret": recorder.one("aws:secretsmanager/secret:Secret").state["arn"],
        "key": outputs["kms_key_arn"],
        "runner_role": arn("aws:iam/role:Role", "ci-runner"),
        "listener_logs": arn("aws:cloudwatch/logGroup:LogGroup", "ci-listener-logs"),
        "prefix_token": "/gha-scalesets/dev/ci/jit",
        "runner_group_token": recorder.one("aws:ec2/securityGroup:SecurityGroup", "ci-runner").id,
    }
    if runtime == "ec2":
        values["template_token"] = outputs["runner_template"]
    else:
        values |= {
            "execution_role": arn("aws:iam/role:Role", "ci-task-execution"),
            "runner_logs": arn("aws:cloudwatch/logGroup:LogGroup", "ci-runners-logs"),
            "cluster_token": arn("aws:ecs/cluster:Cluster", "ci-cluster").rsplit("/", 1)[-1],
            "family_token": "gha-dev-ci-runner",
        }
    parts, whole = iam_doc.placeholders(
        values,
        subnets=SUBNETS,
        instance_types=iam_doc.INSTANCE_TYPES,  # Ec2Options' default list
        scale_set_ids=[r.state["scale_set_id"] for r in recorder.of_type(SCALE_SET_TYPE)],
        account=ACCOUNT,
        region=REGION,
    )
    return {
        role: iam_doc.normalize(policy(recorder.one(ROLE_POLICY, name).inputs), parts, whole)
        for role, name in ROLES[runtime].items()
    }


@pytest.mark.parametrize("runtime", sorted(ROLES))
def test_the_documented_policies_are_the_ones_the_component_renders(
    deploy, recorder, runtime
) -> None:
    outputs = deploy(runtime)

    rendered = _rendered(recorder, runtime, outputs)

    documented = iam_doc.documented_policies()
    for role, document in rendered.items():
        assert document == documented[role], role
