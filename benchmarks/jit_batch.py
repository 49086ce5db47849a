"""Batch JIT-config generation: bounded concurrency vs one request at a time (upstream's mutex).

Starts the local simulator with 50 ms injected latency on every request, then generates 100 JIT
configs with ``concurrency=32`` and 100 more with ``concurrency=1`` in the same run, through
one process-wide token cache. Reports the speed-up ratio and requests per runner (counted by the
simulator), and writes them as JSON to ``benchmarks/out/jit_batch.json``.

    .venv/bin/python -m benchmarks.jit_batch [--runners 100] [--latency-ms 50] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from simulator.testing import SimulatorServer

from scaleset import Client, PatCredentials
from scaleset.auth import TokenCache

PAT = "ghp_benchmark_token"
JIT_ROUTE = "generatejitconfig"
OUT = Path(__file__).parent / "out" / "jit_batch.json"


def _count(stats: dict[str, Any], needle: str | None = None) -> int:
    return sum(n for route, n in stats["requests"].items() if needle is None or needle in route)


async def _batch(
    client: Client, sim: SimulatorServer, scale_set_id: int, names: list[str], concurrency: int
) -> dict[str, Any]:
    before = sim.stats()
    chain_before = client.auth_chain_runs
    started = time.perf_counter()
    results = await client.generate_jit_configs(scale_set_id, names, concurrency=concurrency)
    elapsed = time.perf_counter() - started
    after = sim.stats()
    failures = [r.name for r in results if r.error is not None]
    jit_requests = _count(after, JIT_ROUTE) - _count(before, JIT_ROUTE)
    return {
        "concurrency": concurrency,
        "runners": len(names),
        "failures": len(failures),
        "seconds": round(elapsed, 3),
        "runners_per_second": round(len(names) / elapsed, 1),
        "requests": _count(after) - _count(before),
        "requests_per_runner": round((_count(after) - _count(before)) / len(names), 3),
        "jit_requests_per_runner": round(jit_requests / len(names), 3),
        "auth_chain_runs": client.auth_chain_runs - chain_before,
        "auth_requests": _count(after) - _count(before) - jit_requests,
    }


async def run(runners: int, latency_ms: int, concurrency: int) -> dict[str, Any]:
    with SimulatorServer(pats=[PAT], seed=1) as sim:
        credentials = PatCredentials(PAT)
        async with Client(sim.config_url("acme"), credentials, token_cache=TokenCache()) as setup:
            group = await setup.get_runner_group_by_name("Default")
            scale_set = await setup.create_scale_set(name="bench", runner_group_id=group.id)
        sim.set_faults(latency_ms=latency_ms)
        # A cold token cache: the first batch pays for the auth chain once.
        async with Client(sim.config_url("acme"), credentials, token_cache=TokenCache()) as c:
            batched = await _batch(
                c, sim, scale_set.id, [f"fast-{i}" for i in range(runners)], concurrency
            )
            serial = await _batch(c, sim, scale_set.id, [f"slow-{i}" for i in range(runners)], 1)
    return {
        "latency_ms": latency_ms,
        "batched": batched,
        "serial": serial,
        "speedup": round(serial["seconds"] / batched["seconds"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
