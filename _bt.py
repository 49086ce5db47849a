import asyncio, json, time
from benchmarks import burst
t=time.time()
r = asyncio.run(burst.run(jobs=50, max_runners=50, latency_ms=50, jitter_ms=10))
for k in ("ours","upstream_equivalent"):
    r[k].pop("timeline")
print(json.dumps(r, indent=1)); print(time.time()-t)
