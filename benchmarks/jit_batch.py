"""Batch JIT-config generation: bounded concurrency vs one request at a time (upstream's mutex).

Starts the simulator in its own process (so it does not share this interpreter's GIL, like a
real service) with 50 ms injected latency on JIT requests, then generates 100 JIT configs with
``concurrency=32`` and 100 more with ``concurrency=1`` in the same run. The first batch runs on
a cold token cache, so it also pays for the auth chain once. Reports the speed-up ratio and
requests per runner as counted by the simulator, and writes them to
``benchmarks/out/jit_batch.json``. The machine's load average is recorded too: the batched run
is bounded by CPU (about 4 ms of httpx work per request), so a busy machine lowers the ratio.

    .venv/bin/python -m benchmarks.jit_batch [--runners 100] [--latency-ms 50] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from gha_scalesets.scaleset import Client, PatCredentials
from gha_scalesets.scaleset.auth import TokenCache

PAT = "ghp_benchmark_token"
JIT_ROUTE = "POST /_apis/runtime/runnerscalesets/{id}/generatejitconfig"
OUT = Path(__file__).parent / "out" / "jit_batch.json"


class Simulator:
    """The simulator's control API (``/_sim/``) over HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._http = httpx.Client(base_url=f"{url}/_sim", timeout=30)

    def requests(self) -> dict[str, int]:
        return self._http.get("/stats").raise_for_status().json()["requests"]

    def set_faults(self, **knobs: Any) -> None:
        self._http.post("/faults", json=knobs).raise_for_status()


@contextmanager
def simulator_process() -> Iterator[Simulator]:
    """Run ``python -m gha_scalesets.simulator`` on a free port until the block ends."""
    command = [sys.executable, "-m", "gha_scalesets.simulator", "--port", "0", "--pat", PAT]
    process = subprocess.Popen(
        [*command, "--log-level", "warning"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()  # "Scale-set simulator on http://127.0.0.1:PORT (...)"
        url = next((w for w in banner.split() if w.startswith("http://")), None)
        if url is None:
            raise RuntimeError(f"the simulator did not start: {banner!r}")
        simulator = Simulator(url)
        deadline = time.monotonic() + 15
        while True:
            try:
                simulator.requests()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield simulator
    finally:
        process.terminate()
        process.wait(timeout=10)


def _delta(after: dict[str, int], before: dict[str, int], route: str | None = None) -> int:
    return sum(n - before.get(k, 0) for k, n in after.items() if route is None or k == route)


async def _batch(
    client: Client, sim: Simulator, scale_set_id: int, prefix: str, runners: int, concurrency: int
) -> dict[str, Any]:
    names = [f"{prefix}-{i}" for i in range(runners)]
    before, chain_before = sim.requests(), client.auth_chain_runs
    started, cpu_started = time.perf_counter(), time.process_time()
    results = await client.generate_jit_configs(scale_set_id, names, concurrency=concurrency)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    after = sim.requests()
    total, jit = _delta(after, before), _delta(after, before, JIT_ROUTE)
    return {
        "concurrency": concurrency,
        "runners": runners,
        "failures": sum(1 for r in results if not r.ok),
        "seconds": round(elapsed, 3),
        "runners_per_second": round(runners / elapsed, 1),
        "client_cpu_ms_per_runner": round(cpu * 1000 / runners, 2),
        "requests": total,
        "jit_requests_per_runner": round(jit / runners, 3),
        "auth_chain_runs": client.auth_chain_runs - chain_before,
        "auth_chain_requests": total - jit,
    }


async def run(runners: int, latency_ms: int, concurrency: int) -> dict[str, Any]:
    with simulator_process() as sim:
        config_url, credentials = f"{sim.url}/acme", PatCredentials(PAT)
        async with Client(config_url, credentials, token_cache=TokenCache()) as setup:
            scale_set = await setup.create_scale_set(name="bench", runner_group_id=1)
        sim.set_faults(latency_ms=latency_ms, routes=[JIT_ROUTE])
        async with Client(config_url, credentials, token_cache=TokenCache()) as client:
            batched = await _batch(client, sim, scale_set.id, "fast", runners, concurrency)
            serial = await _batch(client, sim, scale_set.id, "slow", runners, 1)
    return {
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "latency_ms": latency_ms,
        "batched": batched,
        "serial": serial,
        "speedup": round(serial["seconds"] / batched["seconds"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runners", type=int, default=100)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    report = asyncio.run(run(args.runners, args.latency_ms, args.concurrency))
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
