"""Runners as EC2 instances launched from a launch template.

Runners of one scale set are launched together: one ``RunInstances`` per batch (``MinCount`` =
``MaxCount``: all or nothing, so no partial batch to sort out), tagged with the scale set, IMDSv2
only. A burst is split into batches of at most ``launch_batch_size``, at least one per subnet.
On capacity errors a batch moves along instance types x subnets (starting subnets spread
across batches), spot before on-demand; a batch no combination takes is halved and tried
again. A spot-only refusal (spot capacity or price in every pool, the spot quota, or no
permission to create the spot service-linked role in a fresh account) falls through to
on-demand in the same launch, and is counted in ``spot_fallbacks``. Calls are paced within
AWS's rate limits (``aws_limits``). Each runner's JIT config goes to a SecureString
``<ssm_prefix>/<scale set id>/<instance id>`` that only that instance may read (IAM condition
on the ``gha-scaleset-instance-arn`` tag); the bootstrap from
:func:`~gha_scalesets.contract.boot.runner_user_data` reads and deletes it, then runs the
runner and powers the instance off.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from gha_scalesets.contract.names import (
    TAG_INSTANCE_ARN,
    TAG_INSTANCE_ID,
    TAG_RUNNER_NAME,
    TAG_SCALE_SET_ID,
    TAG_SCALE_SET_NAME,
)
from gha_scalesets.listener.aws import (
    AWS_ERRORS,
    call,
    chunks,
    error_code,
    error_message,
    is_transient,
    session,
)
from gha_scalesets.listener.config import AwsConfig, Ec2RuntimeConfig
from gha_scalesets.listener.runtimes._aws_runtime import AwsRuntime, batches
from gha_scalesets.listener.runtimes._pacing import ApiLimit, Pacer
from gha_scalesets.listener.runtimes.aws_events import parse_ec2_event
from gha_scalesets.listener.runtimes.aws_limits import ec2_limits
from gha_scalesets.listener.runtimes.base import (
    LaunchResult,
    RunnerPhase,
    RunnerSpec,
    RuntimeEvent,
    RuntimeRunner,
)
from gha_scalesets.scaleset.retry import RetryPolicy

log = structlog.get_logger(__name__)

SPOT = "spot"
ON_DEMAND = "on-demand"

# No room for this many instances of this type in this subnet's zone (or not at this spot
# price): try the next combination; a smaller batch may still fit here.
_CAPACITY_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientHostCapacity",
        "InsufficientFreeAddressesInSubnet",
        "Unsupported",
        "SpotMaxPriceTooLow",
    }
)
# An account quota of a whole market would be exceeded: no combination of that market takes a
# batch this big.
_MARKET_QUOTA_CODES = frozenset(
    {"MaxSpotInstanceCountExceeded", "VcpuLimitExceeded", "InstanceLimitExceeded"}
)
# Spot is closed to this account, whatever the batch: EC2 creates the spot service-linked role
# at an account's first spot launch, with the caller's iam:CreateServiceLinkedRole.
SPOT_SERVICE_LINKED_ROLE_DENIED = "AuthFailure.ServiceLinkedRoleCreationNotPermitted"
_SPOT_CLOSED_CODES = frozenset({SPOT_SERVICE_LINKED_ROLE_DENIED})
# After spot was closed, skip it for this long (one refused call per decision is waste).
SPOT_RETRY_SECONDS = 300.0
_NOT_FOUND_CODES = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})
_LIVE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]
_STATE_PHASES = {
    "pending": RunnerPhase.PENDING,
    "running": RunnerPhase.RUNNING,
    "shutting-down": RunnerPhase.STOPPED,
    "stopping": RunnerPhase.FAILED,
    "stopped": RunnerPhase.FAILED,
}
_TERMINATE_BATCH = 500
_DESCRIBE_PAGE = 500


@dataclass(frozen=True)
class _Candidate:
    market: str
    instance_type: str
    subnet_id: str


@dataclass
class _Plan:
    """The launch candidates of one ``launch`` and what its batches learned about them.

    A candidate (or a whole market) that refused a batch of n is not offered batches of n or
    more again, so a burst does not hit the same empty pool once per batch.
    """

    markets: tuple[str, ...]
    instance_types: Sequence[str]
    subnet_ids: Sequence[str]
    first_subnet: int
    refused: dict[_Candidate, int] = field(default_factory=dict)
    market_refused: dict[str, int] = field(default_factory=dict)
    spot_refusal: str | None = None  # why spot did not take a runner
    last_error: str | None = None

    def candidates(self, index: int, size: int) -> Iterator[_Candidate]:
        """Spot before on-demand; per market each type in every subnet, starting subnets
        rotating with ``index`` so a burst spreads across zones."""
        n = len(self.subnet_ids)
        for market in self.markets:
            for instance_type in self.instance_types:
                for k in range(n):
                    subnet = self.subnet_ids[(self.first_subnet + index + k) % n]
                    candidate = _Candidate(market, instance_type, subnet)
                    # Checked per candidate: the previous one may have closed the market.
                    if size < min(
                        self.market_refused.get(market, math.inf),
                        self.refused.get(candidate, math.inf),
                    ):
                        yield candidate

    def refuse(self, candidate: _Candidate, size: int, code: str) -> bool:
        """Note a refusal of ``size`` instances; False when ``code`` is not one a fallback
        can get around (configuration, permission, throttling)."""
        if code in _CAPACITY_CODES:
            self.refused[candidate] = min(size, self.refused.get(candidate, size))
        elif code in _MARKET_QUOTA_CODES:
            market = candidate.market
            self.market_refused[market] = min(size, self.market_refused.get(market, size))
        elif code in _SPOT_CLOSED_CODES and candidate.market == SPOT:
            self.market_refused[SPOT] = 0
        else:
            return False
        self.last_error = code
        if candidate.market == SPOT:
            self.spot_refusal = code
        return True


class Ec2Runtime(AwsRuntime[Ec2RuntimeConfig]):
    """Runners as EC2 instances; see the module docstring for the life of one runner.

    ``spot_fallbacks`` counts runners launched on-demand although spot is configured, by the
    spot refusal that sent them there.
    """

    name = "ec2"

    def __init__(
        self,
        config: Ec2RuntimeConfig,
        aws: AwsConfig,
        *,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        pacer: Pacer | None = None,
    ) -> None:
        super().__init__(config, aws, retry=retry, clock=clock, pacer=pacer)
        self._partition = session().get_partition_for_region(self._api.meta.region_name)
        self._next_subnet = 0
        self.spot_fallbacks: Counter[str] = Counter()
        self._spot_closed: tuple[float, str] | None = None  # (until, why)

    def _documented_limits(self) -> dict[str, ApiLimit]:
        return ec2_limits()

    def _markets(self) -> tuple[str, ...]:
        if not self._config.spot:
            return (ON_DEMAND,)
        return (SPOT, ON_DEMAND) if self._config.on_demand_fallback else (SPOT,)

    def _plan(self) -> _Plan:
        plan = _Plan(
            self._markets(), self._config.instance_types, self._config.subnet_ids, self._next_subnet
        )
        if self._spot_closed is not None:
            until, why = self._spot_closed
            if self._clock() < until:
                plan.market_refused[SPOT] = 0
                plan.spot_refusal = why
            else:
                self._spot_closed = None
        return plan

    async def launch(self, runners: Sequence[RunnerSpec]) -> list[LaunchResult]:
        """Launch in batches; per-runner errors after every fallback was tried."""
        plan = self._plan()
        groups = batches(
            runners, self._config.launch_batch_size, spread=len(self._config.subnet_ids)
        )
        self._next_subnet = (self._next_subnet + len(groups)) % len(self._config.subnet_ids)
        results = await self._launch_batches(
            runners, groups, lambda index, batch: self._launch_batch(plan, index, batch)
        )
        closed = plan.market_refused.get(SPOT) == 0 and plan.spot_refusal in _SPOT_CLOSED_CODES
        if closed and self._spot_closed is None:
            log.warning(
                "spot closed to this account",
                error=plan.spot_refusal,
                retry_in_seconds=SPOT_RETRY_SECONDS,
                hint="let the listener role create the spot service-linked role"
                " (iam:CreateServiceLinkedRole for spot.amazonaws.com) or create it once:"
                " aws iam create-service-linked-role --aws-service-name spot.amazonaws.com",
            )
            self._spot_closed = (self._clock() + SPOT_RETRY_SECONDS, plan.spot_refusal or "")
        return results

    async def _launch_batch(
        self, plan: _Plan, index: int, runners: list[RunnerSpec]
    ) -> list[LaunchResult]:
        """One batch: its instances, or smaller batches where no combination takes it."""
        results: dict[str, LaunchResult] = {}
        pending = [runners]
        while pending:
            group = pending.pop()
            placed = await self._run(plan, index, group)
            if isinstance(placed, list):
                results.update((r.runner_name, r) for r in placed)
            elif len(group) > 1:
                half = len(group) // 2
                pending += [group[half:], group[:half]]
            else:
                results[group[0].runner_name] = self._no_capacity(plan, group[0])
        return [results[s.runner_name] for s in runners]

    async def _run(
        self, plan: _Plan, index: int, group: list[RunnerSpec]
    ) -> list[LaunchResult] | None:
        """``group`` launched on the first combination that takes it (or final errors); None
        when none does."""
        size = len(group)
        for candidate in plan.candidates(index, size):
            try:
                reply = await call(
                    self._api,
                    "run_instances",
                    self._retry,
                    errors=self.launch_errors,
                    pacer=self.pacer,
                    resources=size,
                    **self._run_params(group, candidate),
                )
            except AWS_ERRORS as exc:
                code = error_code(exc)
                if not plan.refuse(candidate, size, code):
                    log.warning("launch request failed", runners=size, error=code)
                    failure = f"RunInstances failed: {error_message(exc)}"
                    return [
                        LaunchResult(s.runner_name, error=failure, retryable=is_transient(code))
                        for s in group
                    ]
                log.info(
                    "launch refused, trying the next candidate",
                    runners=size,
                    error=code,
                    market=candidate.market,
                    instance_type=candidate.instance_type,
                    subnet=candidate.subnet_id,
                )
                continue
            if SPOT in plan.markets and candidate.market == ON_DEMAND:
                self.spot_fallbacks[plan.spot_refusal or "unknown"] += size
            instances = [i["InstanceId"] for i in reply["Instances"]]
            return await self._hand_over(
                list(zip(group, instances, strict=True)), self._parameter_tags(reply["OwnerId"])
            )
        return None

    def _parameter_tags(self, account: str) -> Callable[[RunnerSpec, str], dict[str, str]]:
        """Tags of a JIT parameter: ``TAG_INSTANCE_ARN`` is what the runner role's IAM
        condition compares with the instance that asks."""
        arns = f"arn:{self._partition}:ec2:{self._api.meta.region_name}:{account}:instance"

        def tags(spec: RunnerSpec, instance_id: str) -> dict[str, str]:
            return {
                TAG_SCALE_SET_ID: str(spec.scale_set_id),
                TAG_RUNNER_NAME: spec.runner_name,
                TAG_INSTANCE_ID: instance_id,
                TAG_INSTANCE_ARN: f"{arns}/{instance_id}",
            }

        return tags

    def _no_capacity(self, plan: _Plan, spec: RunnerSpec) -> LaunchResult:
        log.warning("no capacity for the runner", runner=spec.runner_name, error=plan.last_error)
        return LaunchResult(
            spec.runner_name,
            error=(
                f"no EC2 capacity for {', '.join(self._config.instance_types)} in"
                f" {len(self._config.subnet_ids)} subnet(s) ({'/'.join(self._markets())}):"
                f" every combination refused in this batch (last: {plan.last_error});"
                " add instance types, or subnets in other zones"
            ),
            retryable=True,
        )

    def _run_params(self, group: Sequence[RunnerSpec], candidate: _Candidate) -> dict[str, Any]:
        first = group[0]
        # Tags of the whole batch: which runner an instance is lives in the registry and in
        # its JIT parameter's tags (per-instance tags would cost a CreateTags per runner).
        tags = [
            {"Key": "Name", "Value": f"gha-runner {first.scale_set_name}"},
            {"Key": TAG_SCALE_SET_ID, "Value": str(first.scale_set_id)},
            {"Key": TAG_SCALE_SET_NAME, "Value": first.scale_set_name},
        ]
        names = "/".join(s.runner_name for s in group)
        params: dict[str, Any] = {
            "LaunchTemplate": {
                "LaunchTemplateId": self._config.launch_template_id,
                "Version": self._config.launch_template_version,
            },
            "InstanceType": candidate.instance_type,
            "SubnetId": candidate.subnet_id,
            # All or nothing: a partial batch would leave runners to place one by one.
            "MinCount": len(group),
            "MaxCount": len(group),
            # IMDSv2 only, whatever the template says; tags in IMDS give the bootstrap its
            # scale set id.
            "MetadataOptions": {
                "HttpTokens": "required",
                "HttpEndpoint": "enabled",
                "InstanceMetadataTags": "enabled",
            },
            "InstanceInitiatedShutdownBehavior": "terminate",
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": tags},
                {"ResourceType": "volume", "Tags": tags},
            ],
            # Idempotency: a retry after a lost answer must not start a second batch.
            "ClientToken": hashlib.sha256(f"{names}/{candidate}".encode()).hexdigest(),
        }
        if candidate.market == SPOT:
            params["InstanceMarketOptions"] = {
                "MarketType": "spot",
                "SpotOptions": {
                    "SpotInstanceType": "one-time",
                    "InstanceInterruptionBehavior": "terminate",
                },
            }
        return params

    async def _discard(self, provider_ids: Sequence[str]) -> None:
        await self._terminate_chunk(list(provider_ids))

    async def terminate(self, provider_ids: Sequence[str]) -> None:
        """Terminate instances and delete their JIT parameters; unknown ids are skipped.

        Failures are logged and counted in ``terminate_errors``: the next reconciliation
        lists a surviving instance again.
        """
        ids = list(dict.fromkeys(provider_ids))
        for chunk in chunks(ids, _TERMINATE_BATCH):
            await self._terminate_chunk(chunk)
        await self._release(ids)

    async def _terminate_chunk(self, ids: list[str]) -> None:
        try:
            await call(
                self._api,
                "terminate_instances",
                self._retry,
                pacer=self.pacer,
                resources=len(ids),
                InstanceIds=ids,
            )
        except AWS_ERRORS as exc:
            code = error_code(exc)
            if code in _NOT_FOUND_CODES and len(ids) > 1:
                # One bad id fails the whole call: isolate it.
                for instance_id in ids:
                    await self._terminate_chunk([instance_id])
            elif code not in _NOT_FOUND_CODES:
                self.terminate_errors[code] += 1
                log.warning("could not terminate instances", count=len(ids), error=code)

    async def list_runners(self, scale_set_id: int) -> list[RuntimeRunner]:
        """The scale set's live instances (tag-filtered, paginated ``DescribeInstances``).

        Also refreshes the instance -> runner cache and sweeps JIT parameters that no live
        instance will read.
        """
        listed_at = self._clock()
        runners: list[RuntimeRunner] = []
        async for page in self._pages(
            "describe_instances",
            "NextToken",
            Filters=[
                {"Name": f"tag:{TAG_SCALE_SET_ID}", "Values": [str(scale_set_id)]},
                {"Name": "instance-state-name", "Values": _LIVE_STATES},
            ],
            MaxResults=_DESCRIBE_PAGE,
        ):
            for reservation in page.get("Reservations", []):
                runners.extend(self._runner(scale_set_id, i) for i in reservation["Instances"])
        await self._reconciled(scale_set_id, runners, listed_at)
        return runners

    def _runner(self, scale_set_id: int, instance: Mapping[str, Any]) -> RuntimeRunner:
        tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
        instance_id = instance["InstanceId"]
        runner_name = self._runner_name(instance_id, tags, TAG_RUNNER_NAME)
        self._adopt(instance_id, runner_name, scale_set_id)
        phase = _STATE_PHASES.get(instance["State"]["Name"], RunnerPhase.FAILED)
        return RuntimeRunner(runner_name, instance_id, scale_set_id, phase)

    def _param_key(self, provider_id: str, runner_name: str) -> str:
        # Written after the launch, for the instance the IAM condition names.
        return provider_id

    def _parse(self, raw: Mapping[str, Any]) -> RuntimeEvent | None:
        event = parse_ec2_event(raw)
        return None if event is None else self._with_owner(event)


if TYPE_CHECKING:
    from gha_scalesets.listener.runtimes.base import Runtime

    def _satisfies_runtime(runtime: Ec2Runtime) -> Runtime:
        """Never called: mypy checks here that Ec2Runtime has all the Runtime protocol asks."""
        return runtime
