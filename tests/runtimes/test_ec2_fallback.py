"""EC2 launch errors: capacity fallback, quotas, throttling and denials.

moto has endless capacity, so a proxy in front of it answers chosen RunInstances/PutParameter
requests with the errors AWS sends (same codes, same wire format); everything else reaches moto.
``launch_concurrency=1`` makes the call counts exact; the burst test checks bounds instead.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.runtimes._faults import Fault
from tests.runtimes._specs import specs


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
    # The first runner tried m5 in both zones and c5 in the first; the batch remembered.
    assert fault_proxy.hits["RunInstances"] == 3 + 6
    assert runtime.launch_errors == {"InsufficientInstanceCapacity": 3}


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
    assert fault_proxy.hits["RunInstances"] == 1 + 4  # one spot refusal closes the market
    assert runtime.launch_errors == {"MaxSpotInstanceCountExceeded": 1}


async def test_burst_with_capacity_errors_launches_everything(
    make_ec2_runtime: Any, fault_proxy: Any, network: Any, boto_client: Any
) -> None:
    fault_proxy.faults = [
        Fault(
            "RunInstances",
            "InsufficientInstanceCapacity",
            500,
            lambda p: p["SubnetId"] == network.subnet_ids[0],
        ),
    ]
    runtime = make_ec2_runtime(endpoint=fault_proxy.url)  # 8 launches in flight

    results = await runtime.launch(specs(24))

    assert all(r.provider_id for r in results)
    assert {i["SubnetId"] for i in _instances(boto_client("ec2"))} == {network.subnet_ids[1]}
    # Only launches that set out before the batch learned the zone was empty hit it: at most
    # the 12 runners whose first subnet it is, in practice the first wave of 4.
    errors = runtime.launch_errors["InsufficientInstanceCapacity"]
    assert 1 <= errors <= 12
    assert fault_proxy.hits["RunInstances"] == 24 + errors


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
    # 2 markets x 2 types x 2 subnets, tried once for the whole batch.
    assert fault_proxy.hits["RunInstances"] == 8
    assert fault_proxy.hits["PutParameter"] == 0
    assert _instances(boto_client("ec2")) == []


async def test_throttling_backs_off_with_jitter_then_gives_up(
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

    # Throttled for good: five attempts each, then a retryable error, no exception.
    fault_proxy.faults = [Fault("RunInstances", "RequestLimitExceeded", 503)]
    fault_proxy.hits.clear()
    backoffs.delays.clear()
    results = await runtime.launch(specs(2, start=1))

    assert all(r.provider_id is None and r.retryable for r in results)
    assert all(r.error.startswith("RunInstances failed: RequestLimitExceeded") for r in results)
    assert fault_proxy.hits["RunInstances"] == 2 * 5
    assert len(backoffs.delays) == 2 * 4


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
