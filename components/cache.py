"""The listener's runner registry table and the state events that keep it current (EC2/ECS).

EventBridge delivers instance/task state changes to an SQS queue the listener drains, so it learns
that runners started or ended without polling ``Describe*`` (terraform-aws-github-runner #4710).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from gha_scalesets.components.naming import ListenerNames
from gha_scalesets.contract.names import (
    EC2_EVENT_SOURCE,
    EC2_EVENT_TYPES,
    ECS_EVENT_SOURCE,
    ECS_EVENT_TYPES,
    PARTITION_KEY,
    SORT_KEY,
    TTL_ATTRIBUTE,
)

_MAX_RECEIVES = 5  # then a message goes to the dead-letter queue (and the DLQ alarm fires)


def state_event_pattern(runtime: str, cluster_arn: str | None = None) -> dict[str, Any]:
    """The EventBridge pattern of the runner state changes a runtime listens to."""
    if runtime == "ec2":
        # Instance events carry no tags: the listener ignores instances it does not know.
        return {"source": [EC2_EVENT_SOURCE], "detail-type": list(EC2_EVENT_TYPES)}
    return {
        "source": [ECS_EVENT_SOURCE],
        "detail-type": list(ECS_EVENT_TYPES),
        "detail": {"clusterArn": [cluster_arn]},
    }


def queue_policy(queue_arn: str, rule_arn: str) -> dict[str, Any]:
    """Only this rule may send to the queue, and nobody without TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "StateEventsFromRule",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            },
            {
                "Sid": "DenyWithoutTls",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": queue_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


@dataclass
class RunnerCache:
    table: aws.dynamodb.Table
    queue: aws.sqs.Queue
    dead_letter_queue: aws.sqs.Queue


def create_runner_cache(
    names: ListenerNames,
    runtime: str,
    kms_key_arn: pulumi.Input[str],
    cluster_arn: pulumi.Input[str] | None,
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> RunnerCache:
    """Table (on demand, KMS, PITR, TTL), queue + DLQ (SSE) and the EventBridge rule feeding it.

    The table's keys are the listener registry's (``listener/registry/dynamodb.py``): items
    keyed (partition, sort), expired by TTL."""
    opts = pulumi.ResourceOptions(parent=parent)
    table = aws.dynamodb.Table(
        names.child("runners"),
        billing_mode="PAY_PER_REQUEST",
        hash_key=PARTITION_KEY,
        range_key=SORT_KEY,
        attributes=[
            aws.dynamodb.TableAttributeArgs(name=PARTITION_KEY, type="S"),
            aws.dynamodb.TableAttributeArgs(name=SORT_KEY, type="S"),
        ],
        ttl=aws.dynamodb.TableTtlArgs(attribute_name=TTL_ATTRIBUTE, enabled=True),
        point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
        server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
            enabled=True, kms_key_arn=kms_key_arn
        ),
        tags=tags,
        opts=opts,
    )
    # SQS-managed SSE: EventBridge cannot send to queues encrypted with the AWS-managed SQS key,
    # and a customer key would need a key policy for events.amazonaws.com.
    dead_letter_queue = aws.sqs.Queue(
        names.child("events-dlq"),
        sqs_managed_sse_enabled=True,
        message_retention_seconds=14 * 24 * 3600,
        tags=tags,
        opts=opts,
    )
    queue = aws.sqs.Queue(
        names.child("events"),
        sqs_managed_sse_enabled=True,
        message_retention_seconds=24 * 3600,  # older state changes are settled by reconciliation
        receive_wait_time_seconds=20,
        visibility_timeout_seconds=60,
        redrive_policy=dead_letter_queue.arn.apply(
            lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": _MAX_RECEIVES})
        ),
        tags=tags,
        opts=opts,
    )
    rule = aws.cloudwatch.EventRule(
        names.child("state-events"),
        description=f"Runner state changes for gha-scalesets listener {names.listener_id}",
        event_pattern=pulumi.Output.from_input(cluster_arn).apply(
            lambda arn: json.dumps(state_event_pattern(runtime, arn))
        ),
        tags=tags,
        opts=opts,
    )
    aws.sqs.QueuePolicy(
        names.child("events"),
        queue_url=queue.url,
        policy=pulumi.Output.all(queue.arn, rule.arn).apply(
            lambda v: json.dumps(queue_policy(v[0], v[1]))
        ),
        opts=opts,
    )
    aws.cloudwatch.EventTarget(
        names.child("state-events"), rule=rule.name, arn=queue.arn, opts=opts
    )
    return RunnerCache(table=table, queue=queue, dead_letter_queue=dead_letter_queue)
