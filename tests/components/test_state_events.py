"""The component's EventBridge patterns, run by a real EventBridge emulator (moto server).

Events put on the bus go through the rule into the queue the listener drains; what arrives is
parsed with the listener's own parsers, so pattern and consumer are checked together.
"""

from __future__ import annotations

import json
from typing import Any

from gha_scalesets.components.cache import queue_policy, state_event_pattern
from gha_scalesets.listener.runtimes.aws_events import parse_ec2_event, parse_ecs_event
from gha_scalesets.listener.runtimes.base import RunnerPhase

CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/runners"


def _wire(boto_client, pattern: dict[str, Any]) -> tuple[Any, Any, str]:
    """Queue + rule + target exactly as the component declares them."""
    sqs, events = boto_client("sqs"), boto_client("events")
    url = sqs.create_queue(QueueName="state-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule_arn = events.put_rule(Name="state-events", EventPattern=json.dumps(pattern))["RuleArn"]
    sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"Policy": json.dumps(queue_policy(queue_arn, rule_arn))}
    )
    events.put_targets(Rule="state-events", Targets=[{"Id": "queue", "Arn": queue_arn}])
    return sqs, events, url


def _put(events, source: str, detail_type: str, detail: dict[str, Any]) -> None:
    entry = {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail)}
    assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0


def _delivered(sqs, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_ec2_state_changes_and_spot_warnings_reach_the_listener(boto_client) -> None:
    sqs, events, url = _wire(boto_client, state_event_pattern("ec2"))

    _put(
        events,
        "aws.ec2",
        "EC2 Instance State-change Notification",
        {"instance-id": "i-1", "state": "running"},
    )
    _put(
        events,
        "aws.ec2",
        "EC2 Spot Instance Interruption Warning",
        {"instance-id": "i-2", "instance-action": "terminate"},
    )
    _put(events, "aws.autoscaling", "EC2 Instance Launch Successful", {"EC2InstanceId": "i-3"})

    parsed = sorted(
        (e.provider_id, e.phase) for e in map(parse_ec2_event, _delivered(sqs, url)) if e
    )
    assert parsed == [("i-1", RunnerPhase.RUNNING), ("i-2", RunnerPhase.FAILED)]


def test_ecs_task_changes_of_other_clusters_are_filtered_out(boto_client) -> None:
    sqs, events, url = _wire(boto_client, state_event_pattern("ecs", CLUSTER))
    task = {
        "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/runners/abc",
        "lastStatus": "RUNNING",
        "startedBy": "gha-scaleset-7",
    }

    _put(events, "aws.ecs", "ECS Task State Change", task | {"clusterArn": CLUSTER})
    _put(events, "aws.ecs", "ECS Task State Change", task | {"clusterArn": CLUSTER + "-other"})

    delivered = _delivered(sqs, url)
    assert [e["detail"]["clusterArn"] for e in delivered] == [CLUSTER]
    event = parse_ecs_event(delivered[0], "gha-scaleset-")
    assert event is not None
    assert (event.scale_set_id, event.phase) == (7, RunnerPhase.RUNNING)
