"""EC2 launch errors: capacity fallback, spot refusals, quotas, throttling and denials.

moto has endless capacity, so a proxy in front of it (the chaos harness's AWS error injection)
answers chosen RunInstances/PutParameter requests with the errors AWS sends (same codes, same
wire format); everything else reaches moto. ``launch_concurrency=1`` makes the call counts
exact. A launch of n runners over two subnets makes two batches (one per subnet).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from gha_scalesets.listener.runtimes.ec2 import SPOT_RETRY_SECONDS, SPOT_SERVICE_LINKED_ROLE_DENIED
from tests.support.aws_errors import Fault
from tests.support.runtimes import specs


def _spot(params: Any) -> bool:
    return params.get("InstanceMarketOptions.MarketType") == "spot"


def _instances(ec2: Any) -> list[dict[str, Any]]:
    reservations = ec2.describe_instances()["Reservations"]
    return [i for r in reservations for i in r["Instances"] if i["State"]["Name"] == "running"]


async def test_capacity_moves_across_types_and_subnets(
    make_ec2_runtime: Any, fault_proxy: Any, network: Any, boto_client: Any
) -> None:
    first, second = network.subnet_ids
    fault_proxy.faults = [
        Fault(
            "RunInstances",
            "InsufficientInstanceCapacity",
            500,
            lambda p: _spot(p) and p["InstanceType"] == "m5.large",
        ),
        Fault(
            "RunInstances",
            "InsufficientInstanceCapacity",
            500,
            lambda p: _spot(p) and p["SubnetId"] == first,
        ),
    ]
    runtime = make_ec2_runtime(endpoint=fault_proxy.url, launch_concurrency=1)

    results = await runtime.launch(specs(6))

    assert all(r.provider_id for r in results)
    placed = Counter(
        (i.get("InstanceLifecycle"), i["InstanceType"], i["SubnetId"])
        for i in _instances(boto_client("ec2"))
    )
    assert placed == {("spot", "c5.large", second): 6}
    # The first batch of 3 tried m5 in both zones and c5 in the first; the second remembered.
    assert fault_proxy.hits["RunInstances"] == 4 + 1
    assert runtime.launch_errors == {"InsufficientInstanceCapacity": 3}
    assert runtime.spot_fallbacks == Counter()


async def test_spot_quota_falls_back_to_on_demand(
    make_ec2_runtime: Any, fault_proxy: Any, boto_client: Any
) -> None:
    fault_proxy.faults = [Fault("RunInstances", "MaxSpotInstanceCountExceeded", 400, _spot)]
    runtime = make_ec2_runtime(endpoint=fault_proxy.url, launch_concurrency=1)

    results = await runtime.launch(specs(4))

    assert all(r.provider_id for r in results)
    instances = _instances(boto_client("ec2"))
    assert len(instances) == 4
    assert all("InstanceLifecycle" not in i and i["InstanceType"] == "m5.large" for i in instances)
    assert fault_proxy.hits["RunInstances"] == 1 + 2  # one spot refusal closes the market
    assert runtime.launch_errors == {"MaxSpotInstanceCountExceeded": 1}
    assert runtime.spot_fallbacks == {"MaxSpotInstanceCountExceeded": 4}


async def test_spot_refused_for_its_service_linked_role_launches_on_demand_at_once(
    make_ec2_runtime: Any, fault_proxy: Any, boto_client: Any
) -> None:
    # A fresh account: EC2 would create the spot service-linked role at the first spot launch,
    # but the caller may not (no iam:CreateServiceLinkedRole). Spot-only: on-demand works.
    now = [1000.0]
    fault_proxy.faults = [Fault("RunInstances", SPOT_SERVICE_LINKED_ROLE_DENIED, 403, _spot)]
    runtime = make_ec2_runtime(endpoint=fault_proxy.url, launch_concurrency=1, clock=lambda: now[0])

    # One scaling decision: every runner runs, on-demand, and nothing is left to retry.
    results = await runtime.launch(specs(4))

    assert [r.error for r in results] == [None] * 4 and all(r.provider_id for r in results)
    instances = _instances(boto_client("ec2"))
    assert len(instances) == 4 and all("InstanceLifecycle" not in i for i in instances)
    assert fault_proxy.hits["RunInstances"] == 1 + 2  # one refusal closed spot for the launch
    assert runtime.spot_fallbacks == {SPOT_SERVICE_LINKED_ROLE_DENIED: 4}

    # The next decisions skip spot (no refused call each time) ...
    fault_proxy.hits.clear()
    await runtime.launch(specs(2, start=4))
    assert fault_proxy.hits["RunInstances"] == 2
    assert runtime.spot_fallbacks == {SPOT_SERVICE_LINKED_ROLE_DENIED: 6}
    # ... until the retry interval has passed: then spot is tried again (the role may exist).
    fault_proxy.faults = []
    now[0] += SPOT_RETRY_SECONDS
    [again] = await runtime.launch(specs(1, start=6))
    spot = [i for i in _instances(boto_client("ec2")) if i.get("InstanceLifecycle") == "spot"]
    assert [i["InstanceId"] for i in spot] == [again.provider_id]


async def test_the_same_refusal_of_an_on_demand_launch_is_final(
    make_ec2_runtime: Any, fault_proxy: Any
) -> None:
    fault_proxy.faults = [Fault("RunInstances", SPOT_SERVICE_LINKED_ROLE_DENIED, 403)]
    runtime = make_ec2_runtime(endpoint=fault_proxy.url, spot=False)

    [result] = await runtime.launch(specs(1))

    assert result.provider_id is None and not result.retryable
    assert SPOT_SERVICE_LINKED_ROLE_DENIED in result.error
    assert fault_proxy.hits["RunInstances"] == 1


async def test_a_batch_no_pool_takes_is_halved_until_it_fits(
    make_ec2_runtime: Any, fault_proxy: Any, network: Any, boto_client: Any
) -> None:
    # Room for at most 4 instances per request, in every pool of both markets.
    fault_proxy.faults = [
        Fault("RunInstances", "InsufficientInstanceCapacity", 500, lambda p: int(p["MaxCount"]) > 4)
    ]
    runtime = make_ec2_runtime(endpoint=fault_proxy.url, launch_concurrency=1)

    results = await runtime.launch(specs(12))

    assert all(r.provider_id for r in results)
    instances = _instances(boto_client("ec2"))
    assert Counter((i.get("InstanceLifecycle"), i["SubnetId"]) for i in instances) == {
        ("spot", network.subnet_ids[0]): 6,
        ("spot", network.subnet_ids[1]): 6,
    }
    # Batch 1 (6 runners) tried all 8 combinations, then its halves of 3 fit at once; batch 2
    # knew nobody takes 6 and went straight to halves.
    assert fault_proxy.hits["RunInstances"] == 8 + 2 + 2
    assert runtime.launch_errors == {"InsufficientInstanceCapacity": 8}


async def test_no_capacity_anywhere_is_a_retryable_error_per_runner(
    make_ec2_runtime: Any, fault_proxy: Any, boto_client: Any
) -> None:
    fault_proxy.faults = [Fault("RunInstances", "InsufficientInstanceCapacity", 500)]
    runtime = make_ec2_runtime(endpoint=fault_proxy.url, launch_concurrency=1)

    results = await runtime.launch(specs(3))

    assert [r.provider_id for r in results] == [None, None, None]
    assert all(r.retryable for r in results)
    assert all(
        "no EC2 capacity for m5.large, c5.large in 2 subnet(s) (spot/on-demand): every"
        " combination refused in this batch (last: InsufficientInstanceCapacity)" in r.error
        for r in results
    )
    # 2 markets x 2 types x 2 subnets, tried once per batch size for the whole launch: 2
    # runners, then 1 (the 2 halves and the other batch know every combination refused 1).
    assert fault_proxy.hits["RunInstances"] == 8 + 8
    assert fault_proxy.hits["PutParameter"] == 0
    assert _instances(boto_client("ec2")) == []


async def test_throttling_backs_off_with_jitter_slows_the_pacer_then_gives_up(
    make_ec2_runtime: Any, fault_proxy: Any, backoffs: Any
) -> None:
    fault_proxy.faults = [Fault("RunInstances", "RequestLimitExceeded", 503, times=2)]
    runtime = make_ec2_runtime(endpoint=fault_proxy.url)

    [result] = await runtime.launch(specs(1))

    assert result.provider_id
    assert fault_proxy.hits["RunInstances"] == 3
    assert runtime.launch_errors == {"RequestLimitExceeded": 2}
    # Full jitter: each wait drawn from [0, 0.5 * 2^(attempt-1)].
    assert len(backoffs.delays) == 2
    assert 0 <= backoffs.delays[0] <= 0.5 and 0 <= backoffs.delays[1] <= 1.0
    assert backoffs.delays[0] != backoffs.delays[1]
    # Every throttling answer halved the pace of RunInstances (2 per second documented);
    # the success gave back a twentieth of it.
    assert runtime.pacer.rate("ec2:RunInstances") == pytest.approx(2 / 4 + 2 / 20)

    # Throttled for good: five attempts each, then a retryable error, no exception.
    fault_proxy.faults = [Fault("RunInstances", "RequestLimitExceeded", 503)]
    fault_proxy.hits.clear()
    backoffs.delays.clear()
    results = await runtime.launch(specs(2, start=1))

    assert all(r.provider_id is None and r.retryable for r in results)
    assert all(r.error.startswith("RunInstances failed: RequestLimitExceeded") for r in results)
    assert fault_proxy.hits["RunInstances"] == 2 * 5
    assert len(backoffs.delays) == 2 * 4
    assert runtime.pacer.rate("ec2:RunInstances") == pytest.approx(2 / 16)  # its floor


async def test_configuration_and_permission_errors_are_final(
    make_ec2_runtime: Any, fault_proxy: Any, boto_client: Any
) -> None:
    fault_proxy.faults = [Fault("RunInstances", "InvalidLaunchTemplateId.NotFound", 400)]
    runtime = make_ec2_runtime(endpoint=fault_proxy.url)

    results = await runtime.launch(specs(2))

    assert all(r.provider_id is None and not r.retryable for r in results)
    assert "InvalidLaunchTemplateId.NotFound" in results[0].error
    assert fault_proxy.hits["RunInstances"] == 2  # no fallback can fix a bad template

    # The instance starts but its JIT config cannot be stored: the instance is useless.
    fault_proxy.faults = [Fault("PutParameter", "AccessDeniedException", 400)]
    [result] = await runtime.launch(specs(1, start=2))

    assert result.provider_id is None and not result.retryable
    assert result.error == "could not store the JIT config in SSM: AccessDeniedException"
    assert _instances(boto_client("ec2")) == []  # it was terminated
    assert fault_proxy.hits["TerminateInstances"] == 1
    assert runtime.launch_errors["AccessDeniedException"] == 1
