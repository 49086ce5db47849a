"""The chaos scenario engine shared by ``python -m benchmarks.chaos`` and ``tests/chaos``.

One scenario: start a simulator (and the moto proxy when the registry or the runners live in
AWS), start the listener in-process, apply the fault, queue a burst, end the fault after the
hold, wait for the burst with a deadline, let the fleet go idle, then check the invariants
(:mod:`benchmarks.chaos_checks`). Process-level faults (kill -9, SIGTERM + upgrade) live in
:mod:`benchmarks.chaos_process`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from benchmarks import chaos_aws
from benchmarks.chaos_checks import ScenarioResult, api_statuses
from benchmarks.chaos_runtime import EmulatedRuntime
from gha_scalesets.listener.app import Listener
from gha_scalesets.listener.config import (
    AwsConfig,
    Ec2RuntimeConfig,
    EcsRuntimeConfig,
    ListenerSettings,
)
from gha_scalesets.listener.registry.dynamodb import create_table
from gha_scalesets.listener.runtimes.base import Runtime
from gha_scalesets.listener.runtimes.ec2 import SPOT_SERVICE_LINKED_ROLE_DENIED
from gha_scalesets.scaleset import Client, PatCredentials, ScaleSet
from gha_scalesets.simulator.limits import pat_credential
from gha_scalesets.simulator.testing import SimulatorServer
from tests.support import aws
from tests.support.canaries import CANARY_PAT, CANARY_PAT_2, Canaries
from tests.support.observe import FleetPeak, captured_logs
from tests.support.waits import eventually

ORG = "acme"
TABLE = "chaos-runners"
SSM_PREFIX = "/chaos/jit"
THROTTLE = "ProvisionedThroughputExceededException"
_NON_FAULT_STATUSES = {"200", "201", "202", "204", "404"}


@dataclass(frozen=True)
class Size:
    """How hard to push: the full run and the CI run differ only here."""

    jobs: int = 30
    max_runners: int = 8
    job_seconds: float = 0.3
    hold_seconds: float = 3.0
    deadline_seconds: float = 120.0
    idle_seconds: float = 30.0
    kill_runs: int = 10
    ha_kill_runs: int = 5
    lease_seconds: float = 10.0  # the listener's defaults
    renew_seconds: float = 2.0
    launch_timeout_seconds: float = 10.0  # a runner not online by then is replaced
    reconcile_seconds: float = 5.0


FULL = Size()
REDUCED = Size(
    jobs=8,
    max_runners=4,
    job_seconds=0.2,
    hold_seconds=1.0,
    deadline_seconds=45,
    kill_runs=1,  # one random point in CI; the full run takes ten
    ha_kill_runs=1,
    lease_seconds=3.0,  # CI: the same protocol, faster
    renew_seconds=0.5,
    launch_timeout_seconds=4.0,  # emulated runners are online within a second
    reconcile_seconds=2.0,
)


@dataclass
class Run:
    """What a fault may touch while a scenario runs."""

    sim: SimulatorServer
    scale_set: ScaleSet
    proxy: chaos_aws.AwsFaultProxy | None
    log: Any  # the captured log buffer
    listener: Listener | None = None


class Fault(Protocol):
    """A fault: ``start`` before (``before_listener``) or after the listener is ready.

    A fault may also have ``problems(run) -> list[str]``: invariants of its own, checked once
    the fleet is idle again.
    """

    before_listener: bool

    async def start(self, run: Run) -> None: ...

    async def end(self, run: Run) -> None: ...

    def injected(self, run: Run, statuses: dict[str, float]) -> int:
        """How many times the fault hit, from what the listener and the proxies saw."""
        ...


@dataclass(frozen=True)
class SimFault:
    """Simulator fault knobs (see ``simulator.faults.FaultSettings``) for the hold window."""

    knobs: dict[str, Any]
    counted: tuple[str, ...] = ()  # statuses that are this fault's hits
    log_marker: str | None = None  # or: log lines naming the failure
    before_listener: bool = False
    advance_clock_seconds: float = 0.0  # then jump the simulator clock: its tokens expire

    async def start(self, run: Run) -> None:
        await asyncio.to_thread(run.sim.set_faults, **self.knobs)
        if self.advance_clock_seconds:
            await asyncio.to_thread(run.sim.advance_clock, self.advance_clock_seconds)

    async def end(self, run: Run) -> None:
        await asyncio.to_thread(run.sim.clear_faults)

    def injected(self, run: Run, statuses: dict[str, float]) -> int:
        hits = sum(int(statuses.get(s, 0)) for s in self.counted)
        if self.log_marker:
            hits += run.log.getvalue().count(self.log_marker)
        return hits


@dataclass(frozen=True)
class ForeignSession:
    """A crashed predecessor's session still holds the scale set (409 until it expires)."""

    before_listener: bool = True

    async def start(self, run: Run) -> None:
        async with _admin(run.sim) as client:
            await client.create_message_session(run.scale_set.id, "crashed-listener")

    async def end(self, run: Run) -> None:
        pass  # it expires server-side (session_ttl_seconds)

    def injected(self, run: Run, statuses: dict[str, float]) -> int:
        return int(statuses.get("409", 0))


@dataclass(frozen=True)
class ScaleSetDeleted:
    """Someone deletes the scale set on GitHub mid-burst and ``pulumi up`` recreates it."""

    before_listener: bool = False

    async def start(self, run: Run) -> None:
        async with _admin(run.sim) as client:
            await client.delete_scale_set(run.scale_set.id)

    async def end(self, run: Run) -> None:
        await _create_scale_set(run.sim, run.scale_set.name)

    def injected(self, run: Run, statuses: dict[str, float]) -> int:
        return 1


@dataclass(frozen=True)
class AwsFaults:
    """AWS errors from the proxy in front of moto for the hold window (``lasting``: for good,
    a property of the account rather than an outage)."""

    faults: tuple[chaos_aws.AwsFault, ...]
    before_listener: bool = False
    lasting: bool = False

    async def start(self, run: Run) -> None:
        assert run.proxy is not None
        run.proxy.faults = list(self.faults)

    async def end(self, run: Run) -> None:
        assert run.proxy is not None
        if not self.lasting:
            run.proxy.faults = []

    def injected(self, run: Run, statuses: dict[str, float]) -> int:
        assert run.proxy is not None
        return sum(run.proxy.injected.values())


@dataclass(frozen=True)
class NeverOnline:
    """A share of runners never comes online (the runtime hangs them): jobs get reassigned."""

    rate: float
    before_listener: bool = False

    async def start(self, run: Run) -> None:
        pass

    async def end(self, run: Run) -> None:
        pass

    def injected(self, run: Run, statuses: dict[str, float]) -> int:
        return int(run.sim.stats()["jobs"]["reassigned"])


TWO_CREDENTIALS = (CANARY_PAT, CANARY_PAT_2)


@dataclass(frozen=True)
class LimitsAndRevocation:
    """Mid-burst, GitHub's secondary limit bites (2 JIT configs a second per credential, 403
    with ``Retry-After``) and the credential holding the listener's session is revoked."""

    before_listener: bool = False

    def revoked(self, run: Run) -> str:
        """The session's credential: the client homes scale set ``id`` on ``id % 2``."""
        return TWO_CREDENTIALS[run.scale_set.id % len(TWO_CREDENTIALS)]

    async def start(self, run: Run) -> None:
        rule = {"points_per_window": 10, "window_seconds": 1.0, "block_seconds": 1.0}
        await asyncio.to_thread(run.sim.set_limits, classes={"jit": rule})
        await asyncio.to_thread(run.sim.revoke, pat_credential(self.revoked(run)))

    async def end(self, run: Run) -> None:
        await asyncio.to_thread(run.sim.clear_limits)  # the revocation stays

    def injected(self, run: Run, statuses: dict[str, float]) -> int:
        return sum(int(statuses.get(status, 0)) for status in ("401", "403", "429"))

    def problems(self, run: Run) -> list[str]:
        """The revoked credential is set aside and the other one did its work."""
        assert run.listener is not None and run.listener.client is not None
        revoked = PatCredentials(self.revoked(run)).label
        lanes = {lane["credential"]: lane for lane in run.listener.client.pacing_snapshot()}
        other = next(lane for label, lane in lanes.items() if label != revoked)
        found = []
        if lanes[revoked]["usable"]:
            found.append(f"the revoked credential {revoked} is still in rotation")
        if not other["classes"].get("jit", {}).get("requests"):
            found.append("the remaining credential sent no JIT request: the work did not move")
        return found


@dataclass(frozen=True)
class Scenario:
    """One row of the fault matrix."""

    name: str
    kind: str
    fault: Fault
    sim_options: dict[str, Any] = field(default_factory=dict)
    listener_options: dict[str, Any] = field(default_factory=dict)
    registry: str = "memory"  # or "dynamodb" (on moto, through the fault proxy)
    cloud: str | None = None  # None: in-process runners; "ec2" | "ecs": on moto

    @property
    def uses_aws(self) -> bool:
        return self.registry == "dynamodb" or self.cloud is not None


_MESSAGE = "GET /message"
_ACK = "DELETE /message/{id}"
_REST_TOKEN = (
    "POST /api/v3/orgs/{org}/actions/runners/registration-token",
    "POST /api/v3/actions/runner-registration",
)


def scenarios() -> list[Scenario]:
    """The fault matrix of issue #9 (process faults are in :mod:`benchmarks.chaos_process`)."""
    return [
        Scenario("5xx-burst", "5xx", SimFault({"error_rate": 0.5, "error_status": 503}, ("503",))),
        Scenario(
            "429-retry-after",
            "429",
            SimFault({"error_rate": 0.4, "error_status": 429, "retry_after_seconds": 1}, ("429",)),
        ),
        Scenario(
            "rate-limit-exhausted",
            "primary-rate-limit",
            # The admin token expires as the window opens: the first JIT call of the burst is
            # refused (401) and the listener must go back to REST, where the budget is spent
            # until X-RateLimit-Reset (a 2-second "hour": the reset passes within the run).
            SimFault(
                {
                    "rate_limit_per_hour": 0,
                    "rate_limit_window_seconds": 2.0,
                    "routes": list(_REST_TOKEN),
                },
                ("403",),
                advance_clock_seconds=1.5,
            ),
            sim_options={"admin_token_ttl_seconds": 1.0, "registration_token_ttl_seconds": 1.0},
        ),
        Scenario("connection-drops", "drop", SimFault({"drop_rate": 0.3}, ("error",))),
        Scenario(
            "long-poll-cut",
            "long-poll-timeout",
            SimFault({"latency_ms": 700, "drop_rate": 1.0, "routes": [_MESSAGE]}, ("error",)),
        ),
        Scenario("mq-401", "mq-401", SimFault({"mq_unauthorized_once": True}, ("401",))),
        Scenario("session-409", "session-conflict", ForeignSession()),
        Scenario(
            "message-redelivery",
            "redelivery",
            SimFault({"error_rate": 1.0, "routes": [_ACK]}, ("503",)),
        ),
        Scenario(
            "runner-never-online",
            "reassignment",
            NeverOnline(0.3),
            sim_options={"assign_timeout_seconds": 1.5, "max_reassignments": 3},
        ),
        Scenario(
            "empty-body-200",
            "empty-body",
            SimFault({"empty_body_rate": 0.3, "routes": [_MESSAGE]}, log_marker="ProtocolError"),
        ),
        Scenario(
            "empty-queue-url",
            "empty-queue-url",
            SimFault({"empty_queue_url_once": True}, log_marker="queue URL", before_listener=True),
        ),
        Scenario("scale-set-deleted", "scale-set-deleted", ScaleSetDeleted()),
        Scenario(
            "limits-and-revoked-credential",
            "rate-limits-revocation",
            LimitsAndRevocation(),
            sim_options={"pats": list(TWO_CREDENTIALS)},
            listener_options={
                "credentials": [{"token": pat} for pat in TWO_CREDENTIALS],
            },
        ),
        Scenario(
            "dynamodb-throttling",
            "dynamodb-throttling",
            AwsFaults(
                tuple(
                    chaos_aws.AwsFault(op, THROTTLE, 400, 0.5)
                    for op in ("GetItem", "UpdateItem", "TransactWriteItems", "Query", "PutItem")
                )
            ),
            registry="dynamodb",
        ),
        Scenario(
            "ec2-insufficient-capacity",
            "cloud-capacity",
            AwsFaults(
                (chaos_aws.AwsFault("RunInstances", "InsufficientInstanceCapacity", 500, 0.6),)
            ),
            registry="dynamodb",
            cloud="ec2",
        ),
        Scenario(
            # A fresh account whose listener may not create the spot service-linked role:
            # every spot launch is refused, on-demand takes the runners in the same decision.
            "ec2-spot-role-missing",
            "cloud-spot-refused",
            AwsFaults(
                (
                    chaos_aws.AwsFault(
                        "RunInstances",
                        SPOT_SERVICE_LINKED_ROLE_DENIED,
                        403,
                        when=(("InstanceMarketOptions.MarketType", "spot"),),
                    ),
                ),
                before_listener=True,
                lasting=True,
            ),
            registry="dynamodb",
            cloud="ec2",
        ),
        Scenario(
            "ecs-launch-failure",
            "cloud-capacity",
            AwsFaults((chaos_aws.AwsFault("RunTask", "ThrottlingException", 400, 0.6),)),
            registry="dynamodb",
            cloud="ecs",
        ),
    ]


@contextlib.asynccontextmanager
async def _admin(sim: SimulatorServer) -> AsyncIterator[Client]:
    async with Client(sim.config_url(ORG), PatCredentials(SecretStr(CANARY_PAT))) as client:
        yield client


async def _create_scale_set(sim: SimulatorServer, name: str) -> ScaleSet:
    async with _admin(sim) as client:
        group = await client.get_runner_group_by_name("Default")
        return await client.create_scale_set(name=name, runner_group_id=group.id)


def simulator(seed: int, **options: Any) -> SimulatorServer:
    """A chaos simulator: canary PAT, short long polls, lingering sessions expire in 3 s."""
    defaults: dict[str, Any] = {
        "pats": [CANARY_PAT],
        "long_poll_seconds": 0.5,
        "session_ttl_seconds": 3.0,
        "seed": seed,
    }
    return SimulatorServer(**{**defaults, **options})


def listener_settings(
    sim: SimulatorServer, name: str, size: Size, **overrides: Any
) -> dict[str, Any]:
    """Listener settings (as a mapping) with short timers for a chaos run."""
    return {
        "github_config_url": sim.config_url(ORG),
        "credentials": {"token": CANARY_PAT},
        "scale_sets": [{"name": name, "max_runners": size.max_runners}],
        "metrics_port": 0,
        "metrics_host": "127.0.0.1",
        "owner_name": "chaos-listener",
        "scale_down_grace_seconds": 0,
        "max_backoff_seconds": 1.0,
        "reconcile_interval_seconds": size.reconcile_seconds,
        "launch_timeout_seconds": size.launch_timeout_seconds,
        "log_level": "debug",
        **overrides,
    }


@contextlib.contextmanager
def _aws(scenario: Scenario, moto_url: str | None, seed: int) -> Iterator[Any]:
    if not scenario.uses_aws:
        yield None
        return
    if moto_url is None:
        raise RuntimeError(f"scenario {scenario.name} needs the moto server")
    aws.reset(moto_url)
    create_table(aws.client("dynamodb", moto_url), TABLE)
    with chaos_aws.AwsFaultProxy(moto_url, [], seed).running() as proxy:
        yield proxy


def _cloud_runtime(scenario: Scenario, moto_url: str, proxy_url: str) -> Runtime | None:
    aws_config = AwsConfig(region=aws.REGION, endpoint_url=proxy_url)
    if scenario.cloud == "ec2":
        from gha_scalesets.listener.runtimes.ec2 import Ec2Runtime

        ec2 = chaos_aws.create_ec2(moto_url)
        config = Ec2RuntimeConfig(
            launch_template_id=ec2.launch_template_id,
            instance_types=["m5.large", "c5.large"],
            subnet_ids=ec2.subnet_ids,
            ssm_prefix=SSM_PREFIX,
        )
        return Ec2Runtime(config, aws_config)
    if scenario.cloud == "ecs":
        from gha_scalesets.listener.runtimes.ecs import EcsRuntime

        cluster, subnets = chaos_aws.create_ecs(moto_url)
        config = EcsRuntimeConfig(
            cluster=cluster, task_definition="runner", subnet_ids=subnets, ssm_prefix=SSM_PREFIX
        )
        return EcsRuntime(config, aws_config)
    return None


async def _scrape(port: int | None) -> str:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        return (await http.get("/metrics")).text


async def run_scenario(
    scenario: Scenario, size: Size, *, moto_url: str | None = None, seed: int = 1
) -> ScenarioResult:
    """Run one in-process scenario and check its invariants."""
    name = f"chaos-{scenario.name}"
    result = ScenarioResult(scenario.name, scenario.kind, size.jobs, max_runners=size.max_runners)
    canaries = Canaries()
    with (
        simulator(seed, **scenario.sim_options) as sim,
        _aws(scenario, moto_url, seed) as proxy,
        captured_logs() as log_buffer,
    ):
        scale_set = await _create_scale_set(sim, name)
        overrides: dict[str, Any] = dict(scenario.listener_options)
        cloud = None
        if proxy is not None:
            assert moto_url is not None
            overrides["aws"] = {"region": aws.REGION, "endpoint_url": proxy.url}
            overrides["registry"] = {
                "type": "dynamodb",
                "table_name": TABLE,
                "cache_ttl_seconds": 1,
            }
            cloud = _cloud_runtime(scenario, moto_url, proxy.url)
        rate = scenario.fault.rate if isinstance(scenario.fault, NeverOnline) else 0.0
        runtime = EmulatedRuntime(cloud=cloud, never_online_rate=rate, seed=seed)
        settings = ListenerSettings(**listener_settings(sim, name, size, **overrides))
        run = Run(sim, scale_set, proxy, log_buffer)
        listener = run.listener = Listener(settings, runtime=runtime)
        stop = asyncio.Event()
        failure = ""
        if scenario.fault.before_listener:
            await scenario.fault.start(run)
        await listener.start()
        serving = asyncio.create_task(listener.run_until(stop))
        try:
            await eventually(lambda: all(listener.ready().values()), size.deadline_seconds)
            if not scenario.fault.before_listener:
                await scenario.fault.start(run)
            async with FleetPeak(sim) as peak:
                await asyncio.to_thread(
                    sim.queue_jobs, [name], size.jobs, duration_seconds=size.job_seconds
                )
                await asyncio.sleep(size.hold_seconds)  # the fault window
                await scenario.fault.end(run)
                cleared = time.monotonic()
                await result.time_recovery(sim, cleared, size.jobs, size.deadline_seconds)
            result.peak_runners = peak.peak
            result.record_simulator(sim)
            result.orphans, result.registry_consistent = await _settle(
                listener, runtime, sim, scenario, moto_url, size
            )
            result.recovered = not serving.done() and all(listener.ready().values())
            statuses = api_statuses(listener.metrics.registry)
            result.faults_injected = scenario.fault.injected(run, statuses)
            own_checks = getattr(scenario.fault, "problems", None)
            if own_checks is not None:
                result.notes += own_checks(run)
            metrics_text = await _scrape(listener.metrics_port)
        finally:
            stop.set()
            try:
                await serving
            except Exception as exc:  # the loop died: that is the finding, keep its text
                failure = f"{type(exc).__name__}: {exc}"
                result.notes.append(f"listener loop failed: {failure}")
            await listener.stop()
        canaries.add_jit_configs(runtime.jit_configs)
        result.extra["canaries"] = len(canaries.secrets)
        result.leaks = canaries.leaks(
            {"logs": log_buffer.getvalue(), "metrics": metrics_text, "exception": failure}
        )
    return result


async def _settle(
    listener: Listener,
    runtime: EmulatedRuntime,
    sim: SimulatorServer,
    scenario: Scenario,
    moto_url: str | None,
    size: Size,
) -> tuple[dict[str, int], bool]:
    """Wait for the idle fleet, then count what is left where (0 everywhere is the target)."""
    ss_id = next(iter(listener.workers), None)

    async def leftovers() -> dict[str, int]:
        found = {
            "github_runners": sim.stats()["runners"]["registered"],
            "runtime_runners": runtime.running,
        }
        if ss_id is not None:
            found["registry_runners"] = await listener.registry.count(ss_id)
        if scenario.cloud is not None and ss_id is not None:
            found["cloud_runners"] = len(
                [r for r in await runtime.list_runners(ss_id) if r.phase.value != "stopped"]
            )
            assert moto_url is not None
            found["cloud_jit_secrets"] = chaos_aws.jit_parameters(moto_url, SSM_PREFIX)
        return found

    async def idle() -> bool:
        return not any((await leftovers()).values())

    await eventually(idle, size.idle_seconds, interval=0.25)
    left = {k: v for k, v in (await leftovers()).items() if v}
    consistent = True
    if ss_id is not None:
        records = await listener.registry.list(ss_id)
        consistent = len(records) == await listener.registry.count(ss_id) == 0
    return left, consistent
