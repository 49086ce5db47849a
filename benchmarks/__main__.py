"""``python -m benchmarks``: run the performance scenarios and write their report.

Writes ``benchmarks/results.json`` (one object per scenario with its numbers and the command
that produced them), ``benchmarks/burst.png`` and ``docs/warm.png``. ``--quick`` runs the
reduced sizes the CI guard uses. Everything runs locally: the simulator and moto's server on
127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from benchmarks import aws_burst, burst, cloud, idle, limits, memory, provider, scale, warm
from benchmarks.plot import burst_png, warm_png
from benchmarks.report import summary_rows
from gha_scalesets.listener.logs import configure_logging

HERE = Path(__file__).parent
SCENARIOS = (
    "burst",
    "idle",
    "cloud",
    "aws-burst",
    "memory",
    "provider",
    "warm",
    "limits",
    "scale",
)
WARM_PLOT = HERE.parent / "docs" / "warm.png"
FULL: dict[str, dict[str, Any]] = {
    "burst": {"jobs": 500, "max_runners": 500},
    "idle": {"scale_sets": 100, "cycles": 3, "hold_seconds": 0.5},
    "cloud": {"jobs": 100},
    "aws-burst": {"runners": 500},
    "memory": {"scale_sets": 10, "jobs_per_set": 50},
    "provider": {"scale_sets": 50, "engine": True},
    "warm": {},
    # A minute lasts 12 s: 4 credentials ask 60 JIT configs a second of one Python process.
    "limits": {"jobs": 2000, "ceiling_per_minute": 180, "time_scale": 5.0},
    # GitHub's real 50 s hold, real time: about 20 minutes
    "scale": {"sizes": (10, 100, 500, 1000, 2000), "window_seconds": 150.0, "probes": 10},
}
QUICK: dict[str, dict[str, Any]] = {
    "burst": {"jobs": 50, "max_runners": 50, "latency_ms": 5.0, "jitter_ms": 1.0},
    "idle": {"scale_sets": 10, "cycles": 4, "hold_seconds": 0.5},
    "cloud": {"jobs": 20},
    "aws-burst": {"runners": 40, "deadline_seconds": 300},
    "memory": {"scale_sets": 3, "jobs_per_set": 5},
    "provider": {"scale_sets": 5},
    "warm": {"quick": True},
    # A minute lasts a second: 100 jobs under 40 a minute, what the CI guard needs.
    "limits": {
        "jobs": 100,
        "ceiling_per_minute": 40,
        "time_scale": 60.0,
        "credentials": (1, 2),
        "modes": ("pacing_on", "pacing_learned", "pacing_off"),
    },
    "scale": {
        "sizes": (500,),
        "window_seconds": 6.0,
        "hold_seconds": 3.0,
        "probes": 5,
        "replica_sets": 30,
        "replica_jobs": 5,
    },
}
RUNNERS: dict[str, Callable[..., Any]] = {
    "burst": lambda **kw: asyncio.run(burst.run(**kw)),
    "idle": lambda **kw: asyncio.run(idle.run(**kw)),
    "cloud": lambda **kw: asyncio.run(cloud.run(**kw)),
    "aws-burst": lambda **kw: asyncio.run(aws_burst.run(**kw)),
    "memory": memory.run,
    "provider": provider.run,
    "warm": warm.run,
    "limits": lambda **kw: asyncio.run(limits.run(**kw)),
    "scale": lambda **kw: asyncio.run(scale.run(**kw)),
}

HELP = """Run the performance scenarios and write their report.

Writes benchmarks/results.json (one object per scenario with its numbers and the command that
produced them) and benchmarks/burst.png; --quick runs the reduced sizes the CI guard uses.
Everything runs locally: the simulator and moto's server on 127.0.0.1."""

cli = typer.Typer(add_completion=False, help=HELP, rich_markup_mode=None)
console = Console(stderr=True)


def run_scenario(name: str, quick: bool) -> dict[str, Any]:
    """One scenario with its sizes; the result says which command reproduces it."""
    options = (QUICK if quick else FULL)[name]
    started = time.monotonic()
    result = RUNNERS[name](**options)
    command = ["python", "-m", "benchmarks", "--only", name, *(["--quick"] if quick else [])]
    result["command"] = shlex.join(command)
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def _print(results: dict[str, Any]) -> None:
    table = Table(title="benchmarks")
    for column in ("scenario", "metric", "ours", "upstream-equivalent / baseline"):
        table.add_column(column)
    for row in summary_rows(results):
        table.add_row(*row)
    Console().print(table)


@cli.command()
def main(
    only: Annotated[
        list[str] | None,
        typer.Option(help=f"Run only these scenarios (repeatable): {', '.join(SCENARIOS)}."),
    ] = None,
    quick: Annotated[bool, typer.Option(help="Reduced sizes (what the CI guard runs).")] = False,
    output: Annotated[Path, typer.Option(help="Where to write the results.")] = HERE
    / "results.json",
    plot: Annotated[Path, typer.Option(help="Where to write the burst plot.")] = HERE / "burst.png",
) -> None:
    """Run the scenarios, print a table, write the results JSON and the burst plot."""
    selected = only or list(SCENARIOS)
    unknown = sorted(set(selected) - set(SCENARIOS))
    if unknown:
        raise typer.BadParameter(f"unknown scenario(s) {unknown}; choose from {SCENARIOS}")
    configure_logging("warning")
    results: dict[str, Any] = json.loads(output.read_text()) if output.exists() and only else {}
    for name in selected:
        with console.status(f"running {name} ({'quick' if quick else 'full'})..."):
            try:
                results[name] = run_scenario(name, quick)
            except Exception as exc:  # report which scenario failed and why, then stop
                console.print(f"[red]{name} failed: {type(exc).__name__}: {exc}[/red]")
                sys.exit(1)
        console.print(f"[green]{name}[/green] done in {results[name]['seconds']} s")
        output.write_text(json.dumps(results, indent=2) + "\n")  # kept if a later one fails
    if "burst" in selected:
        burst_png(results["burst"], plot)
    if "warm" in selected and not quick:
        warm_png(results["warm"], WARM_PLOT)
    _print(results)


if __name__ == "__main__":
    cli(prog_name="python -m benchmarks")
