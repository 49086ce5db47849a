"""Runner emulator: an ephemeral self-hosted runner started from a simulator JIT config.

It decodes the JIT config, comes online, waits for the job the service gives it, "runs" it
for the job's duration, reports completion and exits; the service then deregisters it. If
the runner is removed while idle (scale-down), it exits too. A runner that never starts
leaves its scale set's job to be reassigned.

In process::

    outcome = await run_runner(encoded_jit_config)

As a process (the config is read from ``ACTIONS_RUNNER_INPUT_JITCONFIG`` when the flag is
absent, which keeps it out of ``ps``)::

    python -m gha_scalesets.simulator.runner [--jitconfig BLOB]

Exit status: 0 after a job or a removal, 2 for an unusable JIT config, 1 when the simulator
misbehaves or is unreachable. The JIT config is a credential and is never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from gha_scalesets.scaleset.conventions import UserAgent
from gha_scalesets.simulator.jit import InvalidJitConfig, JitConfig

JIT_CONFIG_ENV = "ACTIONS_RUNNER_INPUT_JITCONFIG"
_TIMEOUT = httpx.Timeout(10.0, read=60.0)  # the acquire poll is held up to 20 s


class RunnerError(RuntimeError):
    """The simulator answered something a runner cannot continue from."""


@dataclass(frozen=True)
class RunnerOutcome:
    """How the runner ended: ``completed`` a job, or ``removed`` by the service while idle."""

    runner_id: int
    runner_name: str
    status: Literal["completed", "removed"]
    job_id: int | None = None
    result: str | None = None


@contextlib.asynccontextmanager
async def _http(client: httpx.AsyncClient | None) -> AsyncIterator[httpx.AsyncClient]:
    if client is not None:
        yield client
        return
    # trust_env (the default): HTTPS_PROXY, NO_PROXY and SSL_CERT_FILE apply, as the listener
    # sets them for runners on a corporate network.
    async with httpx.AsyncClient(timeout=_TIMEOUT) as own:
        yield own


async def run_runner(jit_config: str, *, client: httpx.AsyncClient | None = None) -> RunnerOutcome:
    """Run one ephemeral runner to its end. A shared ``client`` needs enough connections
    for all runners that poll at once (each holds one while idle)."""
    jit = JitConfig.decode(jit_config)
    base = f"{jit.url}/_sim/runner/{jit.runner_id}"
    user_agent = UserAgent("runner-emulator")
    user_agent.identify(jit.scale_set_id)
    headers = {"Authorization": f"Bearer {jit.secret}", "User-Agent": str(user_agent)}
    removed = RunnerOutcome(jit.runner_id, jit.runner_name, "removed")

    async with _http(client) as http:

        async def call(action: str, body: Any = None) -> httpx.Response:
            try:
                response = await http.post(
                    f"{base}/{action}", headers=headers, json=body, timeout=_TIMEOUT
                )
            except httpx.HTTPError as exc:
                raise RunnerError(
                    f"runner {jit.runner_name}: {action} failed: {type(exc).__name__}: {exc}"
                ) from None
            if response.status_code not in (200, 202, 204, 404):
                raise RunnerError(
                    f"runner {jit.runner_name}: {action} answered {response.status_code}: "
                    f"{response.text[:200]}"
                )
            return response

        if (await call("online")).status_code == 404:
            return removed
        while True:
            response = await call("acquire")
            if response.status_code == 404:
                return removed
            if response.status_code == 200:
                break
        job = response.json()
        await asyncio.sleep(float(job["duration_seconds"]))  # the job's work
        await call("complete", {"job_id": job["job_id"]})
        return RunnerOutcome(
            jit.runner_id, jit.runner_name, "completed", job["job_id"], job["result"]
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gha_scalesets.simulator.runner",
        description="Emulate an ephemeral GitHub Actions runner against the local simulator.",
    )
    parser.add_argument(
        "--jitconfig",
        help=f"the encodedJITConfig from generatejitconfig (default: ${JIT_CONFIG_ENV})",
    )
    args = parser.parse_args(argv)
    blob = args.jitconfig or os.environ.get(JIT_CONFIG_ENV, "")
    if not blob:
        print(f"error: pass --jitconfig or set {JIT_CONFIG_ENV}", file=sys.stderr)
        return 2
    try:
        outcome = asyncio.run(run_runner(blob))
    except InvalidJitConfig as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RunnerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if outcome.status == "completed":
        print(f"runner {outcome.runner_name}: job {outcome.job_id} {outcome.result}")
    else:
        print(f"runner {outcome.runner_name}: removed by the service before taking a job")
    return 0


if __name__ == "__main__":
    sys.exit(main())
