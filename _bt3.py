import asyncio, time, httpx
from benchmarks.harness import SimulatorProcess, ORG, PAT
from scaleset import Client, PatCredentials
from scaleset.auth import TokenCache
from simulator.runner import run_runner
async def main():
    with SimulatorProcess(long_poll_seconds=10.0) as sim:
        async with Client(sim.config_url(ORG), PatCredentials(PAT), token_cache=TokenCache()) as c:
            g = await c.get_runner_group_by_name("Default")
            ss = await c.create_scale_set(name="x", runner_group_id=g.id)
            s = await c.create_message_session(ss.id, "o")
            poll = asyncio.create_task(c.get_message(s, 0, 100))
            await asyncio.sleep(0.3)
            sim.queue_jobs(["x"], 100, 0.0)
            print(sim.stats()["jobs"])
            t=time.perf_counter()
            jits = await c.generate_jit_configs(ss.id, [f"r{i}" for i in range(100)], concurrency=50)
            print("jit", time.perf_counter()-t)
            pools=[httpx.AsyncClient() for _ in range(8)]
            t=time.perf_counter()
            done=[]
            async def one(i, j):
                await run_runner(j.config, client=pools[i%8]); done.append(time.perf_counter()-t)
            await asyncio.gather(*(one(i,j) for i,j in enumerate(jits)))
            print("runners", sorted(done)[::10], sim.stats()["jobs"])
asyncio.run(main())
