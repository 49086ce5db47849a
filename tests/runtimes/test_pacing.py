"""Client-side pacing: AWS's token buckets mirrored on virtual time, and how they adapt."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from gha_scalesets.listener.config import AwsConfig, Ec2RuntimeConfig, EcsRuntimeConfig
from gha_scalesets.listener.runtimes._pacing import ApiLimit, Pacer, Rate
from gha_scalesets.listener.runtimes.aws_limits import ec2_limits
from gha_scalesets.listener.runtimes.ec2 import Ec2Runtime
from gha_scalesets.listener.runtimes.ecs import EcsRuntime
from tests.support.clocks import FakeClock
from tests.support.runtimes import paced

RUN = "ec2:RunInstances"


async def test_a_burst_passes_then_calls_follow_the_refill_rate() -> None:
    time = FakeClock()
    pacer = paced(ec2_limits(), time)  # RunInstances: 5 requests, 2 more per second

    # Half the burst at once (AWS keeps the other half for requests that leave late) ...
    for _ in range(2):
        await pacer.acquire(RUN)
    assert time.sleeps == []
    # ... then 2 a second.
    for _ in range(4):
        await pacer.acquire(RUN)
    assert time.sleeps == pytest.approx([0.25, 0.5, 0.5, 0.5])
    assert pacer.waited_seconds == pytest.approx(1.75)


async def test_concurrent_callers_queue_for_the_bucket_instead_of_colliding() -> None:
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    pacer = Pacer({RUN: ApiLimit(Rate(1, 1))}, clock=lambda: 0.0, sleep=record)

    # Three callers at the same instant: one passes, the others wait 1 s and 2 s.
    await asyncio.gather(*(pacer.acquire(RUN) for _ in range(3)))

    assert sorted(slept) == pytest.approx([1.0, 2.0])


async def test_instances_drain_their_own_bucket() -> None:
    time = FakeClock()
    pacer = paced(ec2_limits(), time)  # 1000 instances, 2 more per second

    await pacer.acquire(RUN, resources=1000)
    await pacer.acquire(RUN, resources=10)

    assert time.sleeps == pytest.approx([5.0])  # 10 instances at 2 per second


async def test_throttling_empties_and_slows_the_bucket_successes_restore_it() -> None:
    time = FakeClock()
    pacer = paced({RUN: ApiLimit(Rate(5, 2))}, time)

    pacer.on_throttled(RUN)  # AWS's bucket is empty (another client of the account)
    await pacer.acquire(RUN)
    assert time.sleeps == pytest.approx([1.0])  # one token at the halved rate of 1 per second
    for _ in range(10):
        pacer.on_throttled(RUN)
    assert pacer.rate(RUN) == pytest.approx(2 / 16)  # never slower than this
    for _ in range(40):
        pacer.on_success(RUN)
    assert pacer.rate(RUN) == pytest.approx(2.0)  # never faster than documented
    assert pacer.throttled == 11


async def test_operations_without_a_limit_are_not_paced() -> None:
    time = FakeClock()
    pacer = paced(ec2_limits(), time)

    for _ in range(100):
        await pacer.acquire("ec2:DescribeInstances")
    pacer.on_throttled("ec2:DescribeInstances")

    assert time.sleeps == [] and pacer.rate("ec2:DescribeInstances") is None


async def test_an_account_with_raised_limits_configures_them() -> None:
    aws = AwsConfig(region="us-east-1", endpoint_url="http://127.0.0.1:9")
    raised = Ec2RuntimeConfig(
        launch_template_id="lt-1",
        instance_types=["m5.large"],
        subnet_ids=["subnet-1"],
        api_rate_limits={
            "ec2:RunInstances": {
                "burst": 20,
                "per_second": 6,
                "resource_burst": 3000,
                "resource_per_second": 6,
            }
        },
    )
    ec2 = Ec2Runtime(raised, aws)
    fargate = EcsRuntime(EcsRuntimeConfig(cluster="c", task_definition="t", subnet_ids=["s"]), aws)
    on_ec2 = EcsRuntime(
        EcsRuntimeConfig(cluster="c", task_definition="t", subnet_ids=["s"], launch_type="EC2"),
        aws,
    )
    try:
        assert ec2.pacer.rate("ec2:RunInstances") == 6
        assert ec2.pacer.rate("ssm:PutParameter") == 40  # the documented default stays
        assert fargate.pacer.rate("ecs:RunTask") == 20  # Fargate's own RunTask limit
        assert on_ec2.pacer.rate("ecs:RunTask") == 40
    finally:
        for runtime in (ec2, fargate, on_ec2):
            await runtime.close()


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"RunInstances": {"burst": 5, "per_second": 2}}, "String should match pattern"),
        ({"ec2:RunInstances": {"burst": 0, "per_second": 2}}, "greater than 0"),
        (
            {"ec2:RunInstances": {"burst": 5, "per_second": 2, "resource_burst": 9}},
            "give both resource_burst and resource_per_second",
        ),
    ],
)
def test_bad_limits_are_refused_with_the_reason(limits: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Ec2RuntimeConfig(
            launch_template_id="lt-1",
            instance_types=["m5.large"],
            subnet_ids=["subnet-1"],
            api_rate_limits=limits,
        )
