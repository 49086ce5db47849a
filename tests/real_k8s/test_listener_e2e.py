"""``python -m gha_scalesets.listener run`` on the k8s runtime against a real apiserver and the
simulator.

The listener authenticates with a kubeconfig of the listener user, bound only by the
component's Role. The kubelet stand-in runs each runner pod's JIT config (read from its Secret)
in the simulator's runner emulator and reports the pod's phases, so the whole loop is real:
job -> statistics -> JIT config -> Secret + Pod -> runner online -> job done -> pod Succeeded
-> watch -> pod deleted -> Secret collected.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import httpx

from gha_scalesets.simulator.testing import SimulatorServer
from tests.fixtures.control_plane import ControlPlane
from tests.support.github import create_scale_set, jobs_done
from tests.support.kube_rest import KubeRest
from tests.support.kubelet import kubelet_stand_in, runner_objects
from tests.support.listener import ListenerProcess, write_config
from tests.support.observe import FleetPeak
from tests.support.waits import wait_for

JOBS = 20
MAX_RUNNERS = 5


async def _runtime_calls(listener: ListenerProcess) -> int:
    """The runtime's own request count, from the listener's metrics."""
    [port] = [e["metrics_port"] for e in listener.logs if e.get("event") == "listener started"]
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    counts = re.findall(r"^gha_listener_cloud_api_calls_total\{[^}]*\} (\S+)$", text, re.M)
    return int(sum(float(c) for c in counts))


async def test_burst_of_20_jobs_runs_on_pods_and_leaves_nothing(
    sim: SimulatorServer,
    control_plane: ControlPlane,
    admin: KubeRest,
    namespace: str,
    listener_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    await create_scale_set(sim, "k8s-burst")
    config = write_config(
        tmp_path / "listener.yaml",
        sim,
        "k8s-burst",
        MAX_RUNNERS,
        runtime="k8s",
        k8s={
            "namespace": namespace,
            "kubeconfig": str(listener_kubeconfig),
            "image": "stand-in/runner",
        },
    )
    mark = control_plane.audit_mark()
    with kubelet_stand_in(control_plane, namespace, runners=True) as kubelet:
        async with FleetPeak(sim) as peak:
            listener = ListenerProcess(config)
            try:
                await wait_for(lambda: listener.logged("session opened"), 30, "the session")
                started = time.monotonic()
                sim.queue_jobs(["k8s-burst"], count=JOBS, duration_seconds=1.0)
                await wait_for(jobs_done(sim, JOBS), 240, f"{JOBS} jobs")
                took = time.monotonic() - started
                await wait_for(
                    lambda: runner_objects(admin, namespace) == 0, 60, "no pod or secret left"
                )
                runtime_calls = await _runtime_calls(listener)
            finally:
                listener.stop(signal.SIGTERM)

    assert listener.proc.returncode == 0
    jobs = sim.stats()["jobs"]
    assert jobs["completed"] == JOBS and jobs["canceled"] == 0
    assert 0 < peak.peak <= MAX_RUNNERS
    assert 0 < kubelet.peak_running <= MAX_RUNNERS
    assert kubelet.outcomes.count("completed") == JOBS
    assert "error" not in kubelet.outcomes and kubelet.errors == []
    assert listener.logged("runner launch failed") == 0

    requests = control_plane.requests(mark, namespace)
    decisions = listener.logged("scaling up")
    lists = requests[("list", "pods")] + requests[("list", "secrets")]
    # Leadership and heartbeat Leases are not runtime calls: counted apart.
    leases = {k: requests.pop(k) for k in list(requests) if k[1] == "leases"}
    assert {verb for verb, _ in leases} <= {"get", "list", "create", "update", "delete"}
    total = sum(requests.values())
    # Per runner: Secret, Pod, owner reference, and the Pod's deletion; lists only at start
    # (the watch's list and the startup reconciliation: pods and secrets).
    launched = requests[("create", "pods")]
    assert launched >= JOBS
    assert requests[("create", "secrets")] == requests[("patch", "secrets")] == launched
    assert lists == 3
    assert total == runtime_calls  # the runtime counts every request of its own
    print(
        f"k8s e2e: {jobs['completed']}/{JOBS} jobs in {took:.1f} s, peak runners "
        f"{peak.peak} (pods running {kubelet.peak_running}) <= {MAX_RUNNERS}, 0 leftovers; "
        f"{decisions} scale-up decisions, {total} apiserver requests "
        f"({total / max(decisions, 1):.2f} per decision, {lists} list) for {launched} pods, "
        f"{sum(leases.values())} Lease requests: "
        f"{dict(sorted(requests.items()))}"
    )
