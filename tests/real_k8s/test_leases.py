"""Kubernetes Lease leadership on a real API server, as the listener user bound only by the
component's Role: the lease store contract, electors racing for an expired lease, the Role
being exactly what the store needs, and two ``python -m gha_scalesets.listener run`` replicas where
the active one is killed mid-burst."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gha_scalesets.components.k8s import listener_rules
from gha_scalesets.listener.config import K8sRuntimeConfig
from gha_scalesets.listener.leadership import LeaderElector, Lease, LeaseStore, Takeover, Terms
from gha_scalesets.listener.leadership.kubernetes import (
    ANNOTATION_SESSION_ID,
    KubernetesLeaseStore,
    lease_name,
)
from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.control_plane import ControlPlane
from tests.support.github import create_scale_set, jobs_done
from tests.support.kube_rest import KubeError, KubeRest
from tests.support.kubelet import kubelet_stand_in, runner_objects
from tests.support.lease_contract import (
    SS,
    check_compare_and_swap,
    check_members,
    check_read_many,
    check_release,
    swap,
)
from tests.support.listener import ListenerProcess, write_config
from tests.support.observe import FleetPeak
from tests.support.waits import wait_for

ROUNDS = 20
JOBS = 16  # half before the kill, half after
MAX_RUNNERS = 4
LEADERSHIP = {"store": "kubernetes", "lease_duration_seconds": 3, "renew_interval_seconds": 0.5}
_LEASES = "/apis/coordination.k8s.io/v1/namespaces/{}/leases"


@pytest.fixture
async def make_store(
    namespace: str, listener_kubeconfig: Path
) -> AsyncIterator[Callable[[], KubernetesLeaseStore]]:
    """Lease stores in ``namespace`` as the listener user, each with its own connections."""
    stores: list[KubernetesLeaseStore] = []

    def make() -> KubernetesLeaseStore:
        config = K8sRuntimeConfig(namespace=namespace, kubeconfig=listener_kubeconfig)
        stores.append(KubernetesLeaseStore(config))
        return stores[-1]

    yield make
    for store in stores:
        await store.close()


@pytest.fixture
def listener(control_plane: ControlPlane) -> Iterator[KubeRest]:
    """A raw client of the listener user, for requests the store never makes."""
    rest = control_plane.client(control_plane.listener_token)
    yield rest
    rest.close()


async def test_lease_store_contract_on_the_real_server(
    make_store: Callable[[], KubernetesLeaseStore],
    control_plane: ControlPlane,
    admin: KubeRest,
    listener: KubeRest,
    namespace: str,
) -> None:
    mark = control_plane.audit_mark()
    await check_compare_and_swap(make_store())
    await check_members(make_store())

    stored = admin.get(f"{_LEASES.format(namespace)}/{lease_name(SS)}")
    assert stored["spec"]["leaseDurationSeconds"] == 10 and stored["spec"]["renewTime"]
    assert stored["spec"]["holderIdentity"] in ("b#1", "c#1")
    # The refusal is the server's: a replace over a stale resourceVersion is a 409 Conflict.
    stale = {**stored, "metadata": {**stored["metadata"], "resourceVersion": "1"}}
    with pytest.raises(KubeError) as conflict:
        listener.request("PUT", f"{_LEASES.format(namespace)}/{lease_name(SS)}", stale)
    assert conflict.value.status == 409 and conflict.value.reason == "Conflict"

    # The store uses exactly the lease verbs the Role grants: no more is granted, none missing.
    requests = control_plane.requests(mark, namespace)
    used = {verb for verb, resource in requests if resource == "leases"}
    [granted] = [r["verbs"] for r in listener_rules() if r["resources"] == ["leases"]]
    assert used == {"get", "list", "create", "update", "delete"} == set(granted)


async def test_read_many_on_the_real_server(
    make_store: Callable[[], KubernetesLeaseStore], admin: KubeRest, namespace: str
) -> None:
    admin.create(_LEASES.format(namespace), _lease_body("someone-elses-lease"))
    await check_read_many(make_store())  # Leases that are not the listener's are left out


async def test_release_on_the_real_server(
    make_store: Callable[[], KubernetesLeaseStore], admin: KubeRest, namespace: str
) -> None:
    store = make_store()
    await check_release(store)
    held = await swap(store, await store.read(SS), "a#2", session_id="s-2")
    assert held is not None
    stored = admin.get(f"{_LEASES.format(namespace)}/{lease_name(SS)}")
    assert stored["metadata"]["annotations"] == {ANNOTATION_SESSION_ID: "s-2"}
    assert stored["metadata"]["resourceVersion"] == held.version


def test_the_role_allows_nothing_else_on_leases(
    listener: KubeRest, admin: KubeRest, namespace: str
) -> None:
    """Verbs outside the Role, and leases outside the listener's namespace, are refused."""
    leases = _LEASES.format(namespace)
    admin.create(leases, _lease_body("someone-else"))
    refused = [
        ("GET", f"{leases}?watch=true&timeoutSeconds=1", None),
        ("PATCH", f"{leases}/someone-else", {"spec": {"holderIdentity": "x"}}),
        ("DELETE", leases, None),  # deletecollection
        ("GET", _LEASES.format("default"), None),  # list elsewhere
        ("GET", f"{_LEASES.format('default')}/someone-else", None),
        ("POST", _LEASES.format("default"), _lease_body("elsewhere")),
    ]
    for method, path, body in refused:
        kind = "application/merge-patch+json" if method == "PATCH" else "application/json"
        with pytest.raises(KubeError) as forbidden:
            listener.request(method, path, body, content_type=kind)
        assert forbidden.value.status == 403, (method, path)
    assert admin.get(f"{leases}/someone-else")["spec"]["holderIdentity"] == "someone-else"


def _lease_body(name: str) -> dict[str, object]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 10},
    }


class Lockstep:
    """One elector's way to the store that holds each write until the other elector of its
    round writes too: both write over the same version, a real race at the server."""

    name = "kubernetes"

    def __init__(self, store: LeaseStore, together: asyncio.Barrier) -> None:
        self._store = store
        self._together = together
        self.writes: list[Lease | None] = []

    async def read(self, scale_set_id: int) -> Lease | None:
        return await self._store.read(scale_set_id)

    async def swap(self, scale_set_id: int, expected: Lease | None, new: Terms) -> Lease | None:
        await asyncio.wait_for(self._together.wait(), 30)
        written = await self._store.swap(scale_set_id, expected, new)
        self.writes.append(written)
        return written

    async def close(self) -> None:
        pass


async def test_two_electors_racing_for_an_expired_lease_exactly_one_wins(
    make_store: Callable[[], KubernetesLeaseStore], control_plane: ControlPlane, namespace: str
) -> None:
    """20 rounds at once, each a dead holder's 1 s lease and two electors (own connections)
    that write over its version together: one wins, the other gets the 409 and stands by."""
    seed, store_a, store_b = make_store(), make_store(), make_store()
    scale_sets = [100 + i for i in range(ROUNDS)]
    for ss in scale_sets:
        assert await seed.swap(ss, None, Terms(f"dead#{ss}", 1, f"s-dead-{ss}")) is not None
    mark = control_plane.audit_mark()
    rounds = []
    for ss in scale_sets:
        together = asyncio.Barrier(2)
        gates = (Lockstep(store_a, together), Lockstep(store_b, together))
        electors = [
            LeaderElector(gate, ss, f"{side}#{ss}", duration=30, renew_interval=0.5)
            for gate, side in zip(gates, "ab", strict=True)
        ]
        tasks = [asyncio.create_task(e.acquire()) for e in electors]
        rounds.append((ss, gates, electors, tasks))
    try:
        for ss, gates, electors, tasks in rounds:
            await wait_for(lambda g=gates: all(x.writes for x in g), 30, f"both writes of {ss}")
            await wait_for(lambda t=tasks: any(x.done() for x in t), 5, f"a winner of {ss}")
            [winner] = [i for i, t in enumerate(tasks) if t.done()]
            loser = 1 - winner
            takeover: Takeover = tasks[winner].result()
            assert (takeover.reason, takeover.previous_holder) == ("expired", f"dead#{ss}")
            assert takeover.previous_session_id == f"s-dead-{ss}"
            assert gates[winner].writes[0] is not None and gates[loser].writes == [None]
            assert electors[winner].leading and not electors[loser].leading
            current = await seed.read(ss)
            assert current is not None and current.holder == electors[winner].identity
        # The losers stand by behind the winners' fresh leases (live for 30 s): no write.
        assert sum(t.done() for *_, ts in rounds for t in ts) == ROUNDS
    finally:
        for *_, tasks in rounds:
            for task in tasks:
                task.cancel()
        await asyncio.gather(*(t for *_, ts in rounds for t in ts), return_exceptions=True)
    assert control_plane.requests(mark, namespace)[("update", "leases")] == 2 * ROUNDS


def _replica(
    sim: SimulatorServer, workdir: Path, owner: str, namespace: str, kubeconfig: Path
) -> ListenerProcess:
    """One listener replica on the k8s runtime, leadership by Lease, as the listener user."""
    (workdir / owner).mkdir()
    config = write_config(
        workdir / owner / "listener.yaml",
        sim,
        "k8s-ha",
        MAX_RUNNERS,
        runtime="k8s",
        k8s={"namespace": namespace, "kubeconfig": str(kubeconfig), "image": "stand-in/runner"},
        owner_name=owner,
        leadership=LEADERSHIP,
    )
    return ListenerProcess(config)


async def _ready(replica: ListenerProcess) -> bool:
    """Whether the replica answers ``/readyz`` with 200 (serving, or a hot standby)."""
    ports = [e["metrics_port"] for e in replica.logs if e.get("event") == "listener started"]
    if not ports:
        return False
    async with httpx.AsyncClient() as http:
        return (await http.get(f"http://127.0.0.1:{ports[0]}/readyz")).status_code == 200


def _leading(replica: ListenerProcess) -> list[dict[str, object]]:
    return [e for e in replica.logs if e.get("event") == "leading the scale set"]


async def test_standby_takes_over_when_the_active_is_killed_mid_burst(
    sim: SimulatorServer,
    control_plane: ControlPlane,
    admin: KubeRest,
    namespace: str,
    listener_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    """Two replicas (3 s lease, 0.5 s renewals): ``kill -9`` of the active while runner pods
    run jobs; the standby takes the Lease over, deletes the dead session, adopts the dead
    one's pods and serves the rest of the burst within ``max_runners``."""
    scale_set = await create_scale_set(sim, "k8s-ha")
    lease_path = f"{_LEASES.format(namespace)}/{lease_name(scale_set.id)}"
    with kubelet_stand_in(control_plane, namespace, runners=True) as kubelet:
        active = _replica(sim, tmp_path, "replica-a", namespace, listener_kubeconfig)
        standby: ListenerProcess | None = None
        try:
            await wait_for(lambda: active.logged("session opened"), 30, "the first session")
            standby = _replica(sim, tmp_path, "replica-b", namespace, listener_kubeconfig)
            await wait_for(lambda: _ready(standby), 30, "a ready standby")
            async with FleetPeak(sim) as peak:
                sim.queue_jobs(["k8s-ha"], count=JOBS // 2, duration_seconds=3.0)
                await wait_for(lambda: kubelet.running >= 2, 60, "runner pods running jobs")
                assert _leading(standby) == [] and standby.logged("session opened") == 0
                assert sim.stats()["jobs"]["completed"] < JOBS // 2  # mid-burst
                killed = time.monotonic()
                active.stop(signal.SIGKILL)
                sim.queue_jobs(["k8s-ha"], count=JOBS - JOBS // 2, duration_seconds=1.0)
                await wait_for(lambda: _leading(standby), 30, "the standby to take the lease")
                leading_after = time.monotonic() - killed
                await wait_for(lambda: standby.logged("session opened"), 30, "its session")
                takeover = time.monotonic() - killed
                await wait_for(jobs_done(sim, JOBS), 240, f"{JOBS} jobs")
                await wait_for(
                    lambda: runner_objects(admin, namespace) == 0, 60, "no pod or secret left"
                )
            holder = admin.get(lease_path)["spec"]["holderIdentity"]
            standby.stop(signal.SIGTERM)
        finally:
            for replica in (active, standby):
                if replica is not None and replica.proc.poll() is None:
                    replica.stop(signal.SIGKILL)

    [won] = _leading(standby)
    assert won["reason"] == "expired" and str(won["previous_holder"]).startswith("replica-a#")
    assert str(holder).startswith("replica-b#")
    # The dead active's session (its id from the lease) and, on SIGTERM, its own: no 409.
    assert standby.logged("session deleted") == 2
    assert standby.proc.returncode == 0
    assert admin.get(lease_path)["spec"].get("holderIdentity") is None  # released on SIGTERM
    stats = sim.stats()
    assert stats["jobs"]["completed"] == JOBS and stats["jobs"]["canceled"] == 0
    assert stats["runners"]["duplicate_names"] == 0
    assert 0 < peak.peak <= MAX_RUNNERS
    assert 0 < kubelet.peak_running <= MAX_RUNNERS
    assert "error" not in kubelet.outcomes and kubelet.errors == []
    # The lease's duration bounds the takeover: it waits out 3 s unchanged, then serves.
    assert 2.0 < leading_after < 6.0 and takeover < 8.0
    print(
        f"k8s HA: kill -9 of the active; the standby led after {leading_after:.1f} s and "
        f"served (session opened) after {takeover:.1f} s; {JOBS}/{JOBS} jobs, peak runners "
        f"{peak.peak} <= {MAX_RUNNERS}, 0 duplicate names, 0 leftovers; runner pods: "
        f"{dict(Counter(kubelet.outcomes))}"
    )
