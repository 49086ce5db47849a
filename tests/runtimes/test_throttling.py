"""The runtimes against AWS's documented rate limits: the benchmark's throttling proxy in front
of moto, with the proxy's buckets and the runtime's pacer on one virtual clock (time passes
only when paced code waits, so nothing here sleeps)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.aws_throttle import (
    ThrottleModel,
    ThrottlingProxy,
    documented_buckets,
    throttling_error,
)
from tests.support.runtimes import specs


def test_the_model_draws_every_bucket_of_a_request_or_none() -> None:
    now = [0.0]
    model = ThrottleModel(documented_buckets(), clock=lambda: now[0])

    # RunInstances: 5 requests, then 2 a second; 1000 instances, then 2 a second.
    assert model.admit("RunInstances", {"MaxCount": "600"})
    assert not model.admit("RunInstances", {"MaxCount": "600"})  # not enough instances ...
    assert model.admit("RunInstances", {"MaxCount": "400"})  # ... but 400 are (no token taken)
    assert [model.admit("RunInstances", {"MaxCount": "0"}) for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    now[0] += 0.5  # one request token back, one instance token
    assert model.admit("RunInstances", {"MaxCount": "1"})
    # Fargate RunTask: 20 requests; tasks: 100, both drawn by one call of 10 tasks.
    assert all(model.admit("RunTask", {"count": 10}) for _ in range(10))
    assert not model.admit("RunTask", {"count": 1})  # out of tasks, not of requests
    assert model.admit("StopTask", {})  # the cluster bucket still has tokens
    assert model.throttled == {"RunInstances": 2, "RunTask": 1}
    assert throttling_error("RunInstances").code == "RequestLimitExceeded"
    assert throttling_error("PutParameter").code == "ThrottlingException"


@pytest.fixture
def throttled(aws: str, virtual_time: Any) -> Iterator[ThrottlingProxy]:
    model = ThrottleModel(documented_buckets(), clock=virtual_time)
    with ThrottlingProxy(aws, model).running() as proxy:
        yield proxy


async def test_one_unpaced_call_per_runner_is_throttled_past_the_burst(
    make_ec2_runtime: Any, throttled: ThrottlingProxy
) -> None:
    # Today's path: a RunInstances per runner, sent as fast as it goes (retries included).
    runtime = make_ec2_runtime(
        endpoint=throttled.url, paced=False, launch_batch_size=1, spot=False, launch_concurrency=1
    )

    results = await runtime.launch(specs(30))

    launched = [r for r in results if r.provider_id]
    assert len(launched) == 5  # the burst; no time passes between the retries
    assert all(r.retryable and "RequestLimitExceeded" in r.error for r in results[5:])
    assert throttled.model.throttled["RunInstances"] == 25 * 5


async def test_batched_paced_launches_stay_within_the_limits(
    make_ec2_runtime: Any, throttled: ThrottlingProxy, virtual_time: Any
) -> None:
    # One call at a time: on virtual time, concurrent waits would add up instead of overlap.
    runtime = make_ec2_runtime(
        endpoint=throttled.url, launch_batch_size=10, spot=False, launch_concurrency=1
    )

    results = await runtime.launch(specs(60))  # more runners than PutParameter's burst of 40

    assert all(r.provider_id for r in results)
    assert throttled.model.throttled == {}
    assert throttled.model.admitted == {"RunInstances": 6, "PutParameter": 60}
    # 6 RunInstances: half the burst of 5 at once, then 2 a second (1.75 s); the 60 parameters
    # (20 at once, then 40 a second) fit in meanwhile.
    assert virtual_time.now == pytest.approx(1.75)
