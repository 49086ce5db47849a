"""The EC2 runtime end to end against moto's server over HTTP, with the real boto3."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gha_scalesets.listener.reconcile import Reconciler
from gha_scalesets.listener.registry.base import RunnerState
from gha_scalesets.listener.registry.memory import MemoryRegistry
from gha_scalesets.listener.runtimes import ec2 as ec2_module
from gha_scalesets.listener.runtimes.base import RunnerPhase
from tests.support.aws_errors import Fault
from tests.support.aws_events import ec2_spot_warning, ec2_state_event, queue_depth, send_events
from tests.support.clocks import OffsetClock
from tests.support.runtimes import describe_and_list_calls, jit_config, specs, take

PREFIX = "/gha-scalesets/jit"


def _instances(ec2: Any, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    flt = [{"Name": k, "Values": v} for k, v in (filters or {}).items()]
    pages = ec2.get_paginator("describe_instances").paginate(Filters=flt)
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


def _tags(instance: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def _params(ssm: Any, path: str) -> dict[str, dict[str, Any]]:
    pages = ssm.get_paginator("get_parameters_by_path").paginate(
        Path=path, Recursive=True, WithDecryption=True
    )
    return {p["Name"]: p for page in pages for p in page["Parameters"]}


async def test_burst_events_terminate_and_orphans(
    make_ec2_runtime: Any, boto_client: Any, network: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = OffsetClock()
    runtime = make_ec2_runtime(clock=clock)
    ec2, ssm, sqs = boto_client("ec2"), boto_client("ssm"), boto_client("sqs")
    burst = specs(20)

    # One scaling decision: a burst of 20, in one RunInstances per subnet.
    results = await runtime.launch(burst)

    assert [r.runner_name for r in results] == [s.runner_name for s in burst]
    assert all(r.provider_id and r.error is None for r in results)
    by_id = {r.provider_id: r.runner_name for r in results}
    instances = {i["InstanceId"]: i for i in _instances(ec2, {"tag:gha-scaleset-id": ["7"]})}
    assert set(instances) == set(by_id)
    for instance in instances.values():
        tags = {k: v for k, v in _tags(instance).items() if not k.startswith("aws:")}
        # Tags of the batch: which runner an instance is, is in its JIT parameter's tags.
        assert tags == {
            "Name": "gha-runner linux-x64",
            "gha-scaleset-id": "7",
            "gha-scaleset-name": "linux-x64",
        }
        assert instance["MetadataOptions"]["HttpTokens"] == "required"  # IMDSv2 only
        assert instance["InstanceLifecycle"] == "spot"
        assert instance["InstanceType"] == "m5.large"
    # Subnets are spread: half the burst in each zone.
    assert Counter(i["SubnetId"] for i in instances.values()) == {
        network.subnet_ids[0]: 10,
        network.subnet_ids[1]: 10,
    }
    # One SecureString per instance, holding that runner's JIT config, tagged for IAM.
    params = _params(ssm, f"{PREFIX}/7")
    assert set(params) == {f"{PREFIX}/7/{i}" for i in by_id}
    for instance_id, runner in by_id.items():
        param = params[f"{PREFIX}/7/{instance_id}"]
        assert param["Type"] == "SecureString"
        assert param["Value"] == jit_config(runner)
        tags = {
            t["Key"]: t["Value"]
            for t in ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=param["Name"])[
                "TagList"
            ]
        }
        assert tags["gha-scaleset-instance-arn"].endswith(f":instance/{instance_id}")
        assert tags["gha-scaleset-runner"] == runner
    # No JIT config in user data or anywhere in the instance description.
    assert all(jit_config(r) not in repr(instances) for r in by_id.values())
    assert runtime.api_calls["ec2:RunInstances"] == 2
    assert runtime.api_calls["ssm:PutParameter"] == 20  # within Parameter Store's 40 per second
    assert runtime.pacer.waited_seconds == 0
    assert describe_and_list_calls(runtime.api_calls) == 0

    # State changes arrive through the queue: all running, five finished; plus the noise a
    # real queue carries: a duplicate, a stale "running" after "terminated", an instance that
    # is not ours, a transitional state and an undecodable body.
    ids = list(by_id)
    finished = ids[:5]
    send_events(sqs, network.queue_url, [ec2_state_event(i, "running") for i in ids])
    send_events(
        sqs,
        network.queue_url,
        [ec2_state_event(i, "terminated") for i in finished]
        + [
            ec2_state_event(finished[0], "terminated"),
            ec2_state_event(finished[1], "running"),
            ec2_state_event(ids[6], "shutting-down"),
            ec2_state_event("i-0feedfacefeedface", "running"),
            "not json",
        ],
    )
    stream: AsyncIterator = runtime.events()
    got = await take(stream, 20 + 5 + 1)
    ours = [e for e in got if e.provider_id in by_id]
    assert Counter(e.phase for e in ours) == {RunnerPhase.RUNNING: 20, RunnerPhase.STOPPED: 5}
    assert {e.provider_id for e in ours if e.phase is RunnerPhase.STOPPED} == set(finished)
    assert all(e.runner_name == by_id[e.provider_id] and e.scale_set_id == 7 for e in ours)
    foreign = [e for e in got if e.provider_id not in by_id]
    assert [(e.provider_id, e.runner_name) for e in foreign] == [("i-0feedfacefeedface", None)]
    assert describe_and_list_calls(runtime.api_calls) == 0

    # Termination on job completion: instances go, their unread parameters too.
    await runtime.terminate(finished)
    states = {i["InstanceId"]: i["State"]["Name"] for i in _instances(ec2)}
    assert all(states[i] in {"shutting-down", "terminated"} for i in finished)
    assert not set(_params(ssm, f"{PREFIX}/7")) & {f"{PREFIX}/7/{i}" for i in finished}
    assert runtime.terminate_errors == Counter()
    assert describe_and_list_calls(runtime.api_calls) == 0

    # Reconciliation, an hour later: an instance with our tags that the caller does not know
    # (an orphan), and a parameter nobody will read, older than the sweep grace.
    orphan = ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": "gha-scaleset-id", "Value": "7"},
                    {"Key": "gha-scaleset-runner", "Value": "linux-x64-orphan"},
                ],
            }
        ],
    )["Instances"][0]["InstanceId"]
    ssm.put_parameter(Name=f"{PREFIX}/7/i-00000000000000dead", Value="x", Type="SecureString")
    # Force pagination (moto pages by reservation: the two batches and the orphan).
    monkeypatch.setattr(ec2_module, "_DESCRIBE_PAGE", 1)
    clock.advance(3600)
    listed = await runtime.list_runners(7)

    assert {r.provider_id for r in listed} == set(ids[5:]) | {orphan}
    assert {r.runner_name for r in listed if r.provider_id == orphan} == {"linux-x64-orphan"}
    assert all(r.phase is RunnerPhase.RUNNING and r.scale_set_id == 7 for r in listed)
    assert runtime.api_calls["ec2:DescribeInstances"] == 3
    # The unread parameter of a dead instance is swept; live instances keep theirs.
    assert set(_params(ssm, f"{PREFIX}/7")) == {f"{PREFIX}/7/{i}" for i in ids[5:]}
    # The listener cleans the orphan up through terminate.
    await runtime.terminate([orphan])
    assert {i["State"]["Name"] for i in _instances(ec2) if i["InstanceId"] == orphan} <= {
        "shutting-down",
        "terminated",
    }

    # Closing ends the stream; the last batch is deleted once its events were consumed.
    await runtime.close()
    assert [e async for e in stream] == []
    assert queue_depth(sqs, network.queue_url) == 0
    assert runtime.event_stats == {"received": 20 + 5 + 4, "malformed": 1}


async def test_spot_warning_marks_runner_failed_once(
    make_ec2_runtime: Any, boto_client: Any, network: Any
) -> None:
    runtime = make_ec2_runtime()
    [result] = await runtime.launch(specs(1))
    instance_id = result.provider_id
    send_events(
        boto_client("sqs"),
        network.queue_url,
        [ec2_spot_warning(instance_id), ec2_state_event(instance_id, "terminated")],
    )
    [event] = await take(runtime.events(), 1)
    assert (event.phase, event.reason, event.runner_name) == (
        RunnerPhase.FAILED,
        "spot interruption",
        result.runner_name,
    )
    await runtime.close()


async def test_events_end_when_closed_and_without_queue(make_ec2_runtime: Any) -> None:
    runtime = make_ec2_runtime(events_queue_url=None)
    stream = runtime.events()
    await runtime.close()
    assert [e async for e in stream] == []


async def test_events_survive_queue_errors(
    make_ec2_runtime: Any, fault_proxy: Any, boto_client: Any, network: Any
) -> None:
    # Two failed polls (a deleted queue, say), then the queue works again.
    fault_proxy.faults = [
        Fault("ReceiveMessage", "AWS.SimpleQueueService.NonExistentQueue", 400, times=2)
    ]
    runtime = make_ec2_runtime(endpoint=fault_proxy.url)
    send_events(
        boto_client("sqs"), network.queue_url, [ec2_state_event("i-0aaaabbbbccccdddd", "running")]
    )

    [event] = await take(runtime.events(), 1)

    assert (event.provider_id, event.phase) == ("i-0aaaabbbbccccdddd", RunnerPhase.RUNNING)
    assert fault_proxy.hits["ReceiveMessage"] == 3


class _NoGitHub:
    """Reconciliation that needs no GitHub lookup must not make one."""


async def test_reconciliation_after_a_restart_matches_batched_instances_by_id(
    make_ec2_runtime: Any, boto_client: Any, network: Any
) -> None:
    # Batched instances carry no runner name: after a restart the runtime knows none of them,
    # and the registry's provider ids are what ties runners to instances.
    before = make_ec2_runtime()
    results = await before.launch(specs(6))
    registry = MemoryRegistry()
    await registry.reserve(7, [r.runner_name for r in results], 10)
    for result in results:
        await registry.update(
            7, result.runner_name, state=RunnerState.LAUNCHED, provider_id=result.provider_id
        )
    # Launched but never recorded (the predecessor died in between): nobody can name it.
    [unrecorded] = await before.launch(specs(1, start=6))
    after = make_ec2_runtime()
    forgotten: list[tuple[str, int | None, str | None]] = []

    async def forget(name: str, runner_id: int | None, provider_id: str | None) -> None:
        forgotten.append((name, runner_id, provider_id))

    reconciler = Reconciler(
        7,
        10,
        client=_NoGitHub(),  # type: ignore[arg-type]
        registry=registry,
        runtime=after,
        forget=forget,
        launch_timeout=300,
    )

    repairs = await reconciler.run(in_flight_after=0)

    assert repairs == {"orphan_stopped": 1}
    assert forgotten == []
    assert await registry.count(7) == 6
    states = {i["InstanceId"]: i["State"]["Name"] for i in _instances(boto_client("ec2"))}
    assert states[unrecorded.provider_id] in {"shutting-down", "terminated"}
    assert all(states[r.provider_id] == "running" for r in results)
