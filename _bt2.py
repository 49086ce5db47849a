import asyncio, cProfile, pstats, time
from benchmarks import burst
from benchmarks.harness import SimulatorProcess
from listener.logs import configure_logging
configure_logging("warning")
async def main():
    with SimulatorProcess(long_poll_seconds=10.0) as sim:
        sim.set_faults(latency_ms=50, jitter_ms=10)
        pr = cProfile.Profile(); pr.enable()
        r = await burst.run_ours(sim, 100, 100, 50)
        pr.disable()
        print({k: r[k] for k in ("seconds_to_all_launched","job_wait_p50_seconds","api_calls_per_job")})
        pstats.Stats(pr).sort_stats("tottime").print_stats(18)
asyncio.run(main())
