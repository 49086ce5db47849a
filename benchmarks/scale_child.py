"""The listener of the scale benchmark in its own process: ``python -m benchmarks.scale_child``.

Runs the real :class:`~listener.app.Listener` (settings from ``--config``, the token from
``LISTENER_CREDENTIALS``) with a runtime that records launches and starts no runner, plus an
event-loop lag probe every 0.1 s. JSON lines on stdout: ``started``, one ``launched`` per
runner (scale set name, wall-clock time), ``lag`` (the samples since the previous ``lag``
command) and ``stopped``. Commands, one per line on stdin: ``lag``, ``stop``. Logs go to stderr.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from gha_scalesets.listener.app import Listener
from gha_scalesets.listener.config import load_settings
from gha_scalesets.listener.logs import configure_logging
from gha_scalesets.listener.looplag import watch_loop_lag
from gha_scalesets.listener.runtimes.base import LaunchResult, RunnerSpec
from tests.support.noop_runtime import NoopRuntime

LAG_INTERVAL_SECONDS = 0.1


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class ReportingRuntime(NoopRuntime):
    """Launches cost nothing and start nothing; each one is reported with its time."""

    def __init__(self) -> None:
        super().__init__(run_jobs=False)

    async def launch(self, runners: Sequence[RunnerSpec]) -> list[LaunchResult]:
        for spec in runners:
            emit("launched", scale_set=spec.scale_set_name, at=time.time())
        return await super().launch(runners)


async def serve(config: Path) -> None:
    settings = load_settings(config)
    configure_logging(settings.log_level)
    listener = Listener(settings, runtime=ReportingRuntime())
    lags: list[float] = []
    stop = asyncio.Event()
    await listener.start()
    emit("started", at=time.time())
    probe = asyncio.create_task(watch_loop_lag(lags.append, LAG_INTERVAL_SECONDS))
    settling = asyncio.create_task(listener.freeze_when_settled())  # as the listener's CLI
    serving = asyncio.create_task(listener.run_until(stop))
    try:
        while line := await asyncio.to_thread(sys.stdin.readline):
            if line.strip() == "lag":
                emit("lag", samples=lags[:])
                lags.clear()
            elif line.strip() == "stop":
                break
    finally:
        probe.cancel()
        settling.cancel()
        stop.set()
        await serving
        started = time.monotonic()
        await listener.stop()
        emit("stopped", seconds=round(time.monotonic() - started, 2))


def main(config: Annotated[Path, typer.Option(help="The listener settings (YAML).")]) -> None:
    """Serve until ``stop`` arrives on stdin (or stdin closes)."""
    asyncio.run(serve(config))


if __name__ == "__main__":
    typer.run(main)
