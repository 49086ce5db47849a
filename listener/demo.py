"""``make demo``: the listener against the local simulator, a burst of jobs, one summary line.

Starts ``python -m gha_scalesets.simulator`` and ``python -m gha_scalesets.listener run`` (local
runtime: one runner emulator process per job, memory registry), creates a scale set, queues a burst,
shows live
progress and ends with::

    demo: 50/50 jobs completed, peak runners N, api calls per job X.XX, p95 job wait Y.Ys

API calls are every GitHub-facing request the listener caused (REST, admin, message queue),
as the simulator counted them. A job's wait is the time from the burst until a runner
started it (sampled every 0.2 s). Every process the demo started is stopped at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import httpx
import yaml
from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gha_scalesets.scaleset import Client, PatCredentials

JOBS = 50
MAX_RUNNERS = 25
JOB_SECONDS = 3.0
SCALE_SET = "demo-linux"
ORG = "acme"
DEMO_TOKEN = "ghp_demo_token_for_the_local_simulator"  # noqa: S105 - accepted by the local simulator only
_START_TIMEOUT = 30.0
_RUN_TIMEOUT = 240.0
_SAMPLE_SECONDS = 0.2
_URL = re.compile(r"http://127\.0\.0\.1:\d+")

console = Console(stderr=True)


@dataclass
class Burst:
    """What the demo observed while the jobs ran."""

    started: float
    first_running: dict[int, float] = field(default_factory=dict)
    peak_runners: int = 0
    completed: int = 0

    def p95_wait(self) -> float:
        waits = sorted(t - self.started for t in self.first_running.values())
        if not waits:
            return float("nan")
        return waits[max(0, math.ceil(0.95 * len(waits)) - 1)]


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(  # noqa: S603 - our own modules, fixed arguments
            [sys.executable, *args], stdout=output, stderr=subprocess.STDOUT
        )


def _stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_for_text(log: Path, pattern: re.Pattern[str], process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        found = pattern.search(log.read_text(errors="replace"))
        if found:
            return found.group(0)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    command = cast(list[str], process.args)  # what _spawn passed
    raise RuntimeError(f"{' '.join(command[1:4])} did not start; its output:\n{_tail(log)}")


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def _processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in reversed(started):  # the listener first: it deletes its session
            _stop(process)


async def _create_scale_set(config_url: str) -> None:
    async with Client(config_url, PatCredentials(SecretStr(DEMO_TOKEN))) as client:
        group = await client.get_runner_group_by_name("Default")
        await client.create_scale_set(name=SCALE_SET, runner_group_id=group.id)


def _listener_config(work: Path, config_url: str) -> Path:
    token = work / "token"
    token.write_text(DEMO_TOKEN)
    token.chmod(0o600)
    settings = {
        "github_config_url": config_url,
        "credentials": {"token_file": str(token)},
        "runtime": "local",
        "registry": "memory",
        "scale_sets": [{"name": SCALE_SET, "min_runners": 0, "max_runners": MAX_RUNNERS}],
        "metrics_port": 0,
        "metrics_host": "127.0.0.1",
        "owner_name": "make-demo",
        "local": {"state_dir": str(work / "runners")},
        "scale_down_grace_seconds": 5,
    }
    path = work / "listener.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def _api_calls(control: httpx.Client) -> int:
    return sum(control.get("/_sim/stats").json()["requests"].values())


def _watch(control: httpx.Client, burst: Burst, listener: subprocess.Popen[bytes]) -> None:
    columns = (
        TextColumn("[bold]jobs"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("jobs", total=JOBS, detail="")
        deadline = time.monotonic() + _RUN_TIMEOUT
        while burst.completed < JOBS:
            if time.monotonic() > deadline or listener.poll() is not None:
                return
            now = time.monotonic()
            stats = control.get("/_sim/stats").json()
            for job in control.get("/_sim/jobs").json()["jobs"]:
                if job["state"] in ("running", "completed"):
                    burst.first_running.setdefault(job["job_id"], now)
            runners = stats["runners"]
            jobs = stats["jobs"]
            burst.peak_runners = max(burst.peak_runners, runners["registered"])
            burst.completed = jobs["completed"]
            progress.update(
                task,
                completed=burst.completed,
                detail=(
                    f"queued {jobs['queued']:>2}  running {jobs['running']:>2}  "
                    f"runners {runners['registered']:>2} (busy {runners['busy']:>2}, "
                    f"peak {burst.peak_runners})"
                ),
            )
            time.sleep(_SAMPLE_SECONDS)


def run_demo() -> int:
    """Run the whole demo; returns the process exit code."""
    with tempfile.TemporaryDirectory(prefix="gha-demo-") as tmp, _processes() as started:
        work = Path(tmp)
        sim_log, listener_log = work / "simulator.log", work / "listener.log"
        console.print(f"starting the simulator and the listener (max {MAX_RUNNERS} runners) ...")
        simulator = _spawn(
            [
                "-m", "gha_scalesets.simulator", "--port", "0", "--pat", DEMO_TOKEN,
                "--long-poll-seconds", "10", "--log-level", "warning",
            ],
            sim_log,
        )  # fmt: skip
        started.append(simulator)
        base_url = _wait_for_text(sim_log, _URL, simulator)
        config_url = f"{base_url}/{ORG}"
        asyncio.run(_create_scale_set(config_url))
        with httpx.Client(base_url=base_url, timeout=10) as control:
            calls_before = _api_calls(control)
            listener = _spawn(
                [
                    "-m",
                    "gha_scalesets.listener",
                    "run",
                    "--config",
                    str(_listener_config(work, config_url)),
                ],
                listener_log,
            )
            started.append(listener)
            _wait_for_text(listener_log, re.compile(r'"event": "session opened"'), listener)
            console.print(f"queueing {JOBS} jobs of {JOB_SECONDS:.0f} s on scale set {SCALE_SET!r}")
            control.post(
                "/_sim/jobs",
                json={"labels": [SCALE_SET], "count": JOBS, "duration_seconds": JOB_SECONDS},
            ).raise_for_status()
            burst = Burst(started=time.monotonic())
            _watch(control, burst, listener)
            calls = _api_calls(control) - calls_before
        if burst.completed < JOBS:
            console.print(
                f"[red]the burst did not finish; listener log:[/red]\n{_tail(listener_log)}"
            )
        _stop(listener)
        leftovers = list((work / "runners").glob("*.json"))
        if leftovers:
            console.print(f"[red]{len(leftovers)} runner processes were left behind[/red]")
        print(
            f"demo: {burst.completed}/{JOBS} jobs completed, peak runners {burst.peak_runners}, "
            f"api calls per job {calls / JOBS:.2f}, p95 job wait {burst.p95_wait():.1f}s"
        )
        return 0 if burst.completed == JOBS and not leftovers else 1


def main() -> None:
    os.environ.pop("LISTENER_CREDENTIALS", None)  # the demo's listener uses its own token
    try:
        code = run_demo()
    except KeyboardInterrupt:
        code = 130
    except (RuntimeError, httpx.HTTPError) as exc:
        console.print(f"[red]demo failed:[/red] {exc}")
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
