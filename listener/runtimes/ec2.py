"""Runners as EC2 instances launched from a launch template.

One ``RunInstances`` per runner, tagged with its scale set and runner name, IMDSv2 only. On
capacity errors the runtime moves along instance types x subnets (starting subnets spread
across the batch), spot before on-demand; throttling is retried with jittered backoff. The JIT
config goes to a SecureString ``<ssm_prefix>/<scale set id>/<instance id>`` that only that
instance may read (IAM condition on the ``gha-scaleset-instance-arn`` tag); the bootstrap from
``runner_user_data`` reads and deletes it, then runs the runner and powers the instance off.
"""

from __future__ import annotations

import hashlib
import shlex
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from gha_scalesets.listener.config import AwsConfig, Ec2RuntimeConfig
from gha_scalesets.listener.network import RUNNER_CA_DIR, runner_boot_lines
from gha_scalesets.listener.runtimes._aws import (
    call,
    chunks,
    error_code,
    error_message,
    is_transient,
    session,
)
from gha_scalesets.listener.runtimes._aws_runtime import AwsRuntime
from gha_scalesets.listener.runtimes._ssm import jit_fetch_script
from gha_scalesets.listener.runtimes.aws_events import parse_ec2_event
from gha_scalesets.listener.runtimes.base import (
    LaunchResult,
    RunnerPhase,
    RunnerSpec,
    RuntimeEvent,
    RuntimeRunner,
)
from gha_scalesets.scaleset.retry import RetryPolicy

log = structlog.get_logger(__name__)

TAG_SCALE_SET_ID = "gha-scaleset-id"
TAG_SCALE_SET_NAME = "gha-scaleset-name"
TAG_RUNNER_NAME = "gha-scaleset-runner"
TAG_INSTANCE_ID = "gha-scaleset-instance-id"
TAG_INSTANCE_ARN = "gha-scaleset-instance-arn"

SPOT = "spot"
ON_DEMAND = "on-demand"

# No room for this instance type in this subnet's zone (or at this spot price): try the next.
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
# An account quota of the whole market is used up: skip all its other candidates.
_MARKET_QUOTA_CODES = frozenset(
    {"MaxSpotInstanceCountExceeded", "VcpuLimitExceeded", "InstanceLimitExceeded"}
)
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
    """The launch candidates of one batch and what the batch learned about them.

    A candidate that answered with a capacity error is skipped by every later launch of the
    batch, so a burst does not hit the same empty pool once per runner.
    """

    markets: tuple[str, ...]
    instance_types: Sequence[str]
    subnet_ids: Sequence[str]
    first_subnet: int
    exhausted: set[_Candidate] = field(default_factory=set)
    closed_markets: set[str] = field(default_factory=set)
    last_error: str | None = None

    def candidates(self, index: int) -> Iterator[_Candidate]:
        """Spot before on-demand; per market each type in every subnet, starting subnets
        rotating with ``index`` so a burst spreads across zones."""
        n = len(self.subnet_ids)
        for market in self.markets:
            for instance_type in self.instance_types:
                for k in range(n):
                    subnet = self.subnet_ids[(self.first_subnet + index + k) % n]
                    candidate = _Candidate(market, instance_type, subnet)
                    if market not in self.closed_markets and candidate not in self.exhausted:
                        yield candidate


class Ec2Runtime(AwsRuntime[Ec2RuntimeConfig]):
    """Runners as EC2 instances; see the module docstring for the life of one runner."""

    name = "ec2"

    def __init__(
        self,
        config: Ec2RuntimeConfig,
        aws: AwsConfig,
        *,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(config, aws, retry=retry, clock=clock)
        self._partition = session().get_partition_for_region(self._api.meta.region_name)
        self._next_subnet = 0

    def _markets(self) -> tuple[str, ...]:
        if not self._config.spot:
            return (ON_DEMAND,)
        return (SPOT, ON_DEMAND) if self._config.on_demand_fallback else (SPOT,)

    async def launch(self, runners: Sequence[RunnerSpec]) -> list[LaunchResult]:
        """One instance per runner; per-runner errors after every fallback was tried."""
        plan = _Plan(
            self._markets(),
            self._config.instance_types,
            self._config.subnet_ids,
            self._next_subnet,
        )
        self._next_subnet = (self._next_subnet + len(runners)) % len(self._config.subnet_ids)
        return await self._launch_each(
            runners, lambda index, spec: self._launch_one(plan, index, spec)
        )

    async def _launch_one(self, plan: _Plan, index: int, spec: RunnerSpec) -> LaunchResult:
        for candidate in plan.candidates(index):
            try:
                reply = await call(
                    self._api,
                    "run_instances",
                    self._retry,
                    errors=self.launch_errors,
                    **self._run_params(spec, candidate),
                )
            except (ClientError, BotoCoreError) as exc:
                code = error_code(exc)
                if code in _CAPACITY_CODES:
                    plan.exhausted.add(candidate)
                elif code in _MARKET_QUOTA_CODES:
                    plan.closed_markets.add(candidate.market)
                else:
                    log.warning("runner_launch_failed", runner=spec.runner_name, error=code)
                    return LaunchResult(
                        spec.runner_name,
                        error=f"RunInstances failed: {error_message(exc)}",
                        retryable=is_transient(code),
                    )
                plan.last_error = code
                log.info(
                    "runner_launch_fallback",
                    runner=spec.runner_name,
                    error=code,
                    market=candidate.market,
                    instance_type=candidate.instance_type,
                    subnet=candidate.subnet_id,
                )
                continue
            return await self._hand_over(spec, reply)
        log.warning("runner_launch_no_capacity", runner=spec.runner_name, error=plan.last_error)
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

    def _run_params(self, spec: RunnerSpec, candidate: _Candidate) -> dict[str, Any]:
        tags = [
            {"Key": "Name", "Value": spec.runner_name},
            {"Key": TAG_SCALE_SET_ID, "Value": str(spec.scale_set_id)},
            {"Key": TAG_SCALE_SET_NAME, "Value": spec.scale_set_name},
            {"Key": TAG_RUNNER_NAME, "Value": spec.runner_name},
        ]
        params: dict[str, Any] = {
            "LaunchTemplate": {
                "LaunchTemplateId": self._config.launch_template_id,
                "Version": self._config.launch_template_version,
            },
            "InstanceType": candidate.instance_type,
            "SubnetId": candidate.subnet_id,
            "MinCount": 1,
            "MaxCount": 1,
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
            # Idempotency: a retry after a lost answer must not start a second instance.
            "ClientToken": hashlib.sha256(f"{spec.runner_name}/{candidate}".encode()).hexdigest(),
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

    async def _hand_over(self, spec: RunnerSpec, reply: Mapping[str, Any]) -> LaunchResult:
        """Store the JIT config for the new instance; without it the instance is useless."""
        instance_id = reply["Instances"][0]["InstanceId"]
        arn = (
            f"arn:{self._partition}:ec2:{self._api.meta.region_name}:{reply['OwnerId']}"
            f":instance/{instance_id}"
        )
        name = self._params.name(spec.scale_set_id, instance_id)
        tags = {
            TAG_SCALE_SET_ID: str(spec.scale_set_id),
            TAG_RUNNER_NAME: spec.runner_name,
            TAG_INSTANCE_ID: instance_id,
            TAG_INSTANCE_ARN: arn,
        }
        failed = await self._store_jit(spec, name, tags)
        if failed is not None:
            await self._terminate_chunk([instance_id])
            return failed
        self._remember(instance_id, spec.runner_name, spec.scale_set_id)
        return LaunchResult(spec.runner_name, provider_id=instance_id)

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
            await call(self._api, "terminate_instances", self._retry, InstanceIds=ids)
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc)
            if code in _NOT_FOUND_CODES and len(ids) > 1:
                # One bad id fails the whole call: isolate it.
                for instance_id in ids:
                    await self._terminate_chunk([instance_id])
            elif code not in _NOT_FOUND_CODES:
                self.terminate_errors[code] += 1
                log.warning("instance_terminate_failed", count=len(ids), error=code)

    async def list_runners(self, scale_set_id: int) -> list[RuntimeRunner]:
        """The scale set's live instances (tag-filtered, paginated ``DescribeInstances``).

        Also refreshes the instance -> runner cache and sweeps JIT parameters that no live
        instance will read.
        """
        listed_at = self._clock()
        cutoff = self._sweep_cutoff()
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
        await self._reconciled(scale_set_id, runners, listed_at, cutoff)
        return runners

    def _runner(self, scale_set_id: int, instance: Mapping[str, Any]) -> RuntimeRunner:
        tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
        instance_id = instance["InstanceId"]
        runner_name = tags.get(TAG_RUNNER_NAME, "")
        self._adopt(instance_id, runner_name, scale_set_id)
        phase = _STATE_PHASES.get(instance["State"]["Name"], RunnerPhase.FAILED)
        return RuntimeRunner(runner_name, instance_id, scale_set_id, phase)

    def _param_key(self, provider_id: str, runner_name: str) -> str:
        # Written after the launch, for the instance the IAM condition names.
        return provider_id

    def _parse(self, raw: Mapping[str, Any]) -> RuntimeEvent | None:
        event = parse_ec2_event(raw)
        if event is None:
            return None
        owner = self._known.get(event.provider_id)
        if owner is None:
            return event  # not launched by this process: the listener looks it up by id
        return replace(event, runner_name=owner.runner_name, scale_set_id=owner.scale_set_id)


def runner_user_data(
    ssm_prefix: str,
    region: str,
    *,
    runner_dir: str = "/opt/actions-runner",
    runner_user: str = "runner",
    network_env: Mapping[str, str] | None = None,
    ca_pem: str | None = None,
    ca_dir: str = RUNNER_CA_DIR,
) -> str:
    """The instance bootstrap for the runner launch template (cloud-init runs it as root).

    It reads the instance id and the ``gha-scaleset-id`` tag from IMDSv2, fetches and deletes
    ``<ssm_prefix>/<scale set id>/<instance id>``, runs one ephemeral runner as
    ``runner_user`` from ``runner_dir`` and powers off (the instance then terminates), also
    when any step fails. Tracing is off, so the JIT config never reaches the console log.
    Needs curl, the AWS CLI and an unpacked actions-runner in the image. ``network_env`` (the
    proxy variables) and ``ca_pem`` (a private CA, written to ``ca_dir``) apply to every step
    and to the runner.
    """
    prefix = shlex.quote(ssm_prefix.rstrip("/"))
    return (
        "#!/bin/bash\n"
        "# gha-scalesets runner bootstrap: one ephemeral runner, then power off.\n"
        "set +x\n"
        "set -euo pipefail\n"
        "trap 'shutdown -h now' EXIT\n"
        + runner_boot_lines(network_env or {}, ca_pem, ca_dir)
        + "IMDS=http://169.254.169.254/latest\n"
        'TOKEN=$(curl -sSf -X PUT "$IMDS/api/token"'
        ' -H "X-aws-ec2-metadata-token-ttl-seconds: 300")\n'
        'imds() { curl -sSf -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/meta-data/$1"; }\n'
        "INSTANCE_ID=$(imds instance-id)\n"
        f"SCALE_SET_ID=$(imds tags/instance/{TAG_SCALE_SET_ID})\n"
        f'PARAM={prefix}/"$SCALE_SET_ID/$INSTANCE_ID"\n'
        + jit_fetch_script("$PARAM", region)
        + f"cd {shlex.quote(runner_dir)}\n"
        f"runuser -u {shlex.quote(runner_user)} -- ./run.sh\n"
    )
