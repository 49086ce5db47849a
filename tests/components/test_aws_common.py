"""What the EC2 and ECS listeners share, asserted on both: secret, key, cache, events, alarms."""

from __future__ import annotations

import json
import logging

import pytest
from pulumi.runtime import rpc

from gha_scalesets.components import PacingOptions
from gha_scalesets.components.alarms import LISTENER_METRICS
from gha_scalesets.components.listener import TYPE
from gha_scalesets.components.naming import TAG_KEY
from gha_scalesets.providers import GitHubAppArgs
from tests.support.components import TOKEN, TOPIC, policy, scale_sets
from tests.support.pulumi_mocks import ACCOUNT, REGION

RUNTIMES = ["ec2", "ecs"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_every_resource_is_a_child_named_after_the_component(deploy, recorder, runtime) -> None:
    deploy(runtime)

    component = recorder.one(TYPE).urn
    children = [r for r in recorder.resources if r.parent == component]
    others = {r.name for r in recorder.resources if r.parent != component}
    assert others == {"ci", "ss-linux-x64", "ss-gpu"}  # the component and the user's scale sets
    assert len(children) > 20
    assert all(r.name.startswith("ci-") for r in children)
    tagged = [r for r in children if isinstance(r.inputs.get("tags"), dict)]  # ASG: a list
    assert tagged and all(r.inputs["tags"][TAG_KEY] == "dev.ci" for r in tagged)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_credential_is_kms_encrypted_and_never_in_plain_outputs(deploy, recorder, runtime) -> None:
    outputs = deploy(runtime)

    key = recorder.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    secret = recorder.one("aws:secretsmanager/secret:Secret")
    assert secret.inputs["kmsKeyId"] == key.state["arn"]
    version = recorder.one("aws:secretsmanager/secretVersion:SecretVersion")
    assert rpc.is_rpc_secret(version.inputs["secretString"])
    assert json.loads(rpc.unwrap_rpc_secret(version.inputs["secretString"])) == {
        "github_token": TOKEN
    }
    assert outputs["secret_arn"] == secret.state["arn"]
    assert outputs["kms_key_arn"] == key.state["arn"]
    assert TOKEN not in json.dumps(outputs)
    plain_inputs = [r for r in recorder.resources if r.typ.startswith("aws:") and r is not version]
    assert TOKEN not in json.dumps([r.plain for r in plain_inputs])


def test_github_app_credential_goes_to_the_secret_as_json(deploy, recorder, rsa_pem) -> None:
    app = GitHubAppArgs(client_id="Iv1.abc", installation_id=42, private_key=rsa_pem)
    deploy("ecs", github_token=None, github_app=app)

    version = recorder.one("aws:secretsmanager/secretVersion:SecretVersion")
    assert rpc.is_rpc_secret(version.inputs["secretString"])
    value = json.loads(rpc.unwrap_rpc_secret(version.inputs["secretString"]))
    assert value == {
        "github_app": {"client_id": "Iv1.abc", "installation_id": 42, "private_key": rsa_pem}
    }
    assert "PRIVATE KEY" not in json.dumps(
        [r.plain for r in recorder.resources if r is not version and r.typ.startswith("aws:")]
    )


def test_several_credentials_share_one_secret_and_pacing_is_configured(
    deploy, recorder, rsa_pem
) -> None:
    app = GitHubAppArgs(client_id="Iv1.abc", installation_id=42, private_key=rsa_pem)
    deploy(
        "ecs",
        github_token=None,
        github_credentials=[TOKEN, app],
        pacing=PacingOptions(jit_per_minute=180),
    )

    version = recorder.one("aws:secretsmanager/secretVersion:SecretVersion")
    assert rpc.is_rpc_secret(version.inputs["secretString"])
    value = json.loads(rpc.unwrap_rpc_secret(version.inputs["secretString"]))
    assert value == {
        "credentials": [
            {"github_token": TOKEN},
            {"github_app": {"client_id": "Iv1.abc", "installation_id": 42, "private_key": rsa_pem}},
        ]
    }
    (container,) = json.loads(
        recorder.one("aws:ecs/taskDefinition:TaskDefinition", "ci-listener").inputs[
            "containerDefinitions"
        ]
    )
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert json.loads(env["LISTENER_PACING"]) == {"enabled": True, "ceilings": {"jit": 180}}
    assert TOKEN not in json.dumps(env)


def test_a_given_kms_key_is_used_everywhere_and_none_is_created(deploy, recorder) -> None:
    given = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/given"
    outputs = deploy("ec2", kms_key_arn=given)

    assert recorder.of_type("aws:kms/key:Key") == []
    assert recorder.one("aws:secretsmanager/secret:Secret").inputs["kmsKeyId"] == given
    table = recorder.one("aws:dynamodb/table:Table")
    assert table.inputs["serverSideEncryption"]["kmsKeyArn"] == given
    assert outputs["kms_key_arn"] == given


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cache_table_is_on_demand_encrypted_recoverable_and_expiring(
    deploy, recorder, runtime
) -> None:
    outputs = deploy(runtime)

    table = recorder.one("aws:dynamodb/table:Table")
    key = recorder.one("aws:kms/key:Key")
    assert table.inputs["billingMode"] == "PAY_PER_REQUEST"
    assert (table.inputs["hashKey"], table.inputs["rangeKey"]) == ("pk", "sk")
    assert table.inputs["attributes"] == [{"name": "pk", "type": "S"}, {"name": "sk", "type": "S"}]
    assert table.inputs["ttl"] == {"attributeName": "expires_at", "enabled": True}
    assert table.inputs["pointInTimeRecovery"] == {"enabled": True}
    assert table.inputs["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": key.state["arn"]}
    assert outputs["table_name"] == table.state["name"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_state_events_reach_an_encrypted_queue_with_a_dead_letter_queue(
    deploy, recorder, runtime
) -> None:
    outputs = deploy(runtime)

    queues = {r.name: r for r in recorder.of_type("aws:sqs/queue:Queue")}
    queue, dlq = queues["ci-events"], queues["ci-events-dlq"]
    assert queue.inputs["sqsManagedSseEnabled"] is True
    assert dlq.inputs["sqsManagedSseEnabled"] is True
    assert json.loads(queue.inputs["redrivePolicy"]) == {
        "deadLetterTargetArn": dlq.state["arn"],
        "maxReceiveCount": 5,
    }
    rule = recorder.one("aws:cloudwatch/eventRule:EventRule")
    target = recorder.one("aws:cloudwatch/eventTarget:EventTarget")
    assert (target.inputs["rule"], target.inputs["arn"]) == (rule.state["name"], queue.state["arn"])
    statements = policy(recorder.one("aws:sqs/queuePolicy:QueuePolicy").inputs)["Statement"]
    allow, deny = statements
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": rule.state["arn"]}}
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert outputs["queue_url"] == queue.state["url"]
    assert outputs["dead_letter_queue_url"] == dlq.state["url"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_alarms_watch_listener_table_and_dlq_and_notify_the_actions(
    deploy, recorder, runtime
) -> None:
    outputs = deploy(runtime)

    alarms = {
        r.name.removeprefix("ci-"): r
        for r in recorder.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    }
    spot = {"spot-unavailable"} if runtime == "ec2" else set()  # EC2 runners run on spot
    assert (
        set(alarms)
        == {
            "listener-down",
            "no-leader",
            "api-error-rate",
            "jobs-waiting",
            "runner-launch-failures",
            "table-throttling",
            "dead-letters",
            "idle-runner-minutes",
            "credential-budget-low",
            "http-pool-wait",
        }
        | spot
    )
    for alarm in alarms.values():
        assert alarm.inputs["alarmActions"] == [TOPIC]
        assert alarm.inputs["okActions"] == [TOPIC]
    assert outputs["alarm_arns"] == {key: a.state["arn"] for key, a in alarms.items()}

    down = alarms["listener-down"].inputs
    assert (down["namespace"], down["metricName"]) == ("GHAScaleSets", "Heartbeat")
    assert down["dimensions"] == {"Listener": "dev.ci"}
    assert down["treatMissingData"] == "breaching"  # no heartbeat at all is the outage
    assert alarms["jobs-waiting"].inputs["evaluationPeriods"] == 10  # default job_wait_minutes
    no_leader = alarms["no-leader"].inputs
    assert (no_leader["metricName"], no_leader["statistic"]) == ("ActiveScaleSets", "Sum")
    assert (no_leader["comparisonOperator"], no_leader["threshold"]) == (
        "LessThanThreshold",
        len(scale_sets()),  # every configured scale set needs an active replica
    )
    assert no_leader["treatMissingData"] == "breaching"
    pool = alarms["http-pool-wait"].inputs
    assert (pool["metricName"], pool["statistic"], pool["threshold"]) == (
        "HttpPoolWaitSeconds",
        "Maximum",
        5.0,
    )
    budget = alarms["credential-budget-low"].inputs
    assert (budget["metricName"], budget["statistic"]) == ("CredentialBudgetMinPercent", "Minimum")
    assert (budget["comparisonOperator"], budget["threshold"]) == ("LessThanThreshold", 10.0)
    assert budget["evaluationPeriods"] == 5
    table = recorder.one("aws:dynamodb/table:Table").state["name"]
    throttling = alarms["table-throttling"].inputs["metricQueries"]
    assert {q["metric"]["metricName"] for q in throttling if "metric" in q} == {
        "ReadThrottleEvents",
        "WriteThrottleEvents",
    }
    assert all(
        q["metric"]["dimensions"] == {"TableName": table} for q in throttling if "metric" in q
    )
    dlq = next(r for r in recorder.of_type("aws:sqs/queue:Queue") if r.name == "ci-events-dlq")
    dead = alarms["dead-letters"].inputs
    assert dead["dimensions"] == {"QueueName": dlq.state["name"]}
    assert (dead["comparisonOperator"], dead["threshold"]) == ("GreaterThanThreshold", 0)
    used = {a.inputs.get("metricName") for a in alarms.values()} | {
        q["metric"]["metricName"]
        for a in alarms.values()
        for q in a.inputs.get("metricQueries", [])
        if "metric" in q and q["metric"]["namespace"] == "GHAScaleSets"
    }
    assert {"Heartbeat", "ApiRequests", "ApiErrors", "JobsWaiting", "RunnerLaunchFailures"} <= used
    # Every documented metric is used (SpotFallbacks only where runners run on spot).
    assert used & set(LISTENER_METRICS) == set(LISTENER_METRICS) - (
        set() if spot else {"SpotFallbacks"}
    )
    if spot:
        gone = alarms["spot-unavailable"].inputs
        assert (gone["metricName"], gone["statistic"], gone["period"]) == (
            "SpotFallbacks",
            "Sum",
            600,
        )
        assert (gone["evaluationPeriods"], gone["datapointsToAlarm"]) == (3, 3)  # 30 minutes
        assert gone["treatMissingData"] == "notBreaching"
    idle = alarms["idle-runner-minutes"].inputs
    assert {q["metric"]["metricName"] for q in idle["metricQueries"] if "metric" in q} == {
        "IdleRunnerMinutes",
        "IdleBudgetMinutes",
    }
    assert all(q["metric"]["period"] == 3600 for q in idle["metricQueries"] if "metric" in q)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_log_groups_have_retention_and_stack_scoped_names(deploy, recorder, runtime) -> None:
    deploy(runtime, log_retention_days=90)

    groups = recorder.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert groups
    for group in groups:
        assert group.inputs["retentionInDays"] == 90
        assert group.inputs["name"].startswith("/gha-scalesets/dev/ci/")


def test_empty_alarm_actions_warns_that_nobody_is_notified(deploy, recorder, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        deploy("ecs", alarm_actions=[])

    assert any("alarm_actions is empty" in m for m in caplog.messages)
    assert all(
        a.inputs.get("alarmActions", []) == []
        for a in recorder.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    )
