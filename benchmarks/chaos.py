"""The full fault suite: ``python -m benchmarks.chaos`` (``--reduced`` for the CI sizes).

Runs every scenario of :func:`benchmarks.chaos_scenarios.scenarios`, ``kill -9`` runs, the
SIGTERM upgrade and the high-availability faults (:mod:`benchmarks.chaos_ha`) against a
simulator and a moto server on 127.0.0.1, prints the table and writes
``benchmarks/chaos-results.json``. Exit status 1 when any invariant was violated.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from benchmarks import chaos_aws, chaos_ha, chaos_rebalance
from benchmarks.chaos_checks import ScenarioResult
from benchmarks.chaos_process import run_kill9, run_upgrade
from benchmarks.chaos_scenarios import FULL, REDUCED, Size, run_scenario, scenarios
from tests.support import aws

RESULTS = Path(__file__).with_name("chaos-results.json")


def summary(results: list[ScenarioResult]) -> dict[str, object]:
    """The issue's figures over all scenarios."""
    recovery: defaultdict[str, list[float]] = defaultdict(list)
    takeover: defaultdict[str, list[float]] = defaultdict(list)
    for r in results:
        if r.recovery_seconds is not None:
            recovery[r.kind].append(r.recovery_seconds)
        if "takeover_seconds" in r.extra:
            takeover[r.kind].append(r.extra["takeover_seconds"])
    return {
        "scenarios": len(results),
        "failed": [r.name for r in results if not r.ok],
        "faults_injected": sum(r.faults_injected for r in results),
        "jobs_run": sum(r.jobs for r in results),
        "jobs_lost": sum(r.lost for r in results),
        "max_runners_over_limit": max((r.over_max for r in results), default=0),
        "orphans": sum(r.orphan_total for r in results),
        "secrets_leaked": sum(len(r.leaks) for r in results),
        "mean_recovery_seconds": {k: round(sum(v) / len(v), 2) for k, v in recovery.items()},
        "duplicate_names": sum(r.duplicate_names for r in results),
        "takeover_seconds": {
            k: {"mean": round(sum(v) / len(v), 2), "max": max(v), "runs": len(v)}
            for k, v in takeover.items()
        },
    }


async def run_all(size: Size, moto_url: str, only: list[str]) -> list[ScenarioResult]:
    results = []
    for scenario in scenarios():
        if not only or scenario.name in only:
            results.append(await run_scenario(scenario, size, moto_url=moto_url))
    if not only or "kill-9" in only:
        for index in range(size.kill_runs):
            with tempfile.TemporaryDirectory() as workdir:
                results.append(await run_kill9(size, moto_url, Path(workdir), index))
    if not only or "sigterm-upgrade" in only:
        with tempfile.TemporaryDirectory() as workdir:
            results.append(await run_upgrade(size, moto_url, Path(workdir)))
    for kind in chaos_ha.HA_KINDS:
        if not only or kind in only:
            for index in range(chaos_ha.runs(kind, size)):
                with tempfile.TemporaryDirectory() as workdir:
                    results.append(
                        await chaos_ha.run_ha(kind, size, moto_url, Path(workdir), index)
                    )
    if not only or chaos_rebalance.KIND in only:
        with tempfile.TemporaryDirectory() as workdir:
            results.append(await chaos_rebalance.run_rebalance(size, moto_url, Path(workdir)))
    return results


def _with_earlier(results: list[ScenarioResult], output: Path, size: Size) -> list[ScenarioResult]:
    """``results`` plus the earlier rows of ``output`` for the scenarios not run now, when
    they were measured at the same sizes: ``--only`` refreshes rows, the file stays whole."""
    if not output.exists():
        return results
    earlier = json.loads(output.read_text())
    if any(size.__dict__.get(k) != v for k, v in earlier.get("size", {}).items()):
        return results
    fresh = {r.kind for r in results}
    kept = [ScenarioResult.from_json(row) for row in earlier.get("scenarios", [])]
    return [r for r in kept if r.kind not in fresh] + results


def _table(results: list[ScenarioResult]) -> Table:
    table = Table(
        "scenario",
        "faults",
        "jobs",
        "lost",
        "peak/max",
        "dup names",
        "orphans",
        "leaks",
        "takeover",
        "recovery",
    )
    for r in results:
        table.add_row(
            f"{'' if r.ok else '[red]'}{r.name}",
            str(r.faults_injected),
            str(r.jobs),
            str(r.lost),
            f"{r.peak_runners}/{r.max_runners}",
            str(r.duplicate_names),
            str(r.orphan_total),
            str(len(r.leaks)),
            f"{r.extra['takeover_seconds']:.1f} s" if "takeover_seconds" in r.extra else "-",
            "-" if r.recovery_seconds is None else f"{r.recovery_seconds:.1f} s",
        )
    return table


def main(
    reduced: Annotated[bool, typer.Option(help="CI sizes: small bursts, one kill -9 run")] = False,
    only: Annotated[list[str] | None, typer.Option(help="scenario names (repeatable)")] = None,
    output: Annotated[Path, typer.Option(help="where to write the JSON results")] = RESULTS,
) -> None:
    """Run the fault matrix and report jobs lost, runners over max, orphans, leaks, recovery."""
    size = REDUCED if reduced else FULL
    os.environ.update(aws.DUMMY_CREDENTIALS)
    chaos_aws.serialise_dynamodb()
    with aws.moto_server(serialized=False) as moto:
        results = asyncio.run(run_all(size, moto, only or []))
    if only:
        results = _with_earlier(results, output, size)
    report = {
        "size": size.__dict__,
        "summary": summary(results),
        "scenarios": [r.to_json() for r in results],
    }
    output.write_text(json.dumps(report, indent=2) + "\n")
    console = Console()
    console.print(_table(results))
    console.print_json(json.dumps(report["summary"]))
    for r in results:
        for problem in r.problems():
            console.print(f"[red]{r.name}[/red]: {problem}")
    if report["summary"]["failed"]:
        raise typer.Exit(1)


if __name__ == "__main__":
    cli = typer.Typer(add_completion=False, rich_markup_mode=None)
    cli.command()(main)
    cli(prog_name="python -m benchmarks.chaos")
