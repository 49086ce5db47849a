"""The plots of docs/benchmarks.md: the burst (runners launched and jobs waiting over time, ours
vs. upstream-equivalent) and warm capacity (job wait vs. idle cost, one point per policy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def burst_png(burst: dict[str, Any], path: Path) -> None:
    """Write the PNG from the burst scenario's result object."""
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    styles = {
        "ours": ("tab:blue", "ours"),
        "upstream_equivalent": ("tab:red", "upstream-equivalent"),
    }
    for key, (color, label) in styles.items():
        line = burst[key]["timeline"]
        ax.plot(line["t"], line["runners"], color=color, label=f"{label}: runners launched")
        ax.plot(
            line["t"], line["waiting"], color=color, linestyle="--", label=f"{label}: jobs waiting"
        )
    params = burst["parameters"]
    ax.set_title(
        f"Burst of {params['jobs']} jobs, {params['latency_ms']:.0f}±{params['jitter_ms']:.0f} ms "
        f"per GitHub request: {burst['speedup']}x faster to all runners launched"
    )
    ax.set_xlabel("seconds since the jobs were queued")
    ax.set_ylabel("count")
    ax.grid(alpha=0.3)
    ax.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


_WAITS = ("wait_p50_seconds", "wait_p95_seconds", "wait_p99_seconds")


def warm_png(warm: dict[str, Any], path: Path) -> None:
    """Write the PNG from the warm scenario's result object: p95 wait against idle
    runner-minutes per 1,000 jobs, one labelled point per policy (p50 to p99 as a bar)."""
    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    points: dict[tuple[float, ...], list[str]] = {}  # policies with the same figures share one
    for name, figures in warm["policies"].items():
        key = tuple(figures[k] for k in ("idle_runner_minutes_per_1000_jobs", *_WAITS))
        points.setdefault(key, []).append(name)
    placed: list[tuple[float, float]] = []
    for (x, p50, p95, p99), names in sorted(points.items()):
        color = "tab:green" if "adaptive" in names else "tab:blue"
        ax.vlines(x, p50, p99, color=color, alpha=0.35, linewidth=6)
        ax.plot([x], [p95], "o", color=color, markersize=8)
        # labels of neighbouring points are stacked, not drawn over each other
        near = sum(1 for px, py in placed if abs(px - x) < 250 and abs(py - p95) < 10)
        placed.append((x, p95))
        ax.annotate(
            " = ".join(names),
            (x, p95),
            textcoords="offset points",
            xytext=(8, 4 - 13 * near),
            fontsize=9,
        )
    params = warm["parameters"]
    ax.set_title(
        f"Job wait vs. idle runners, one {params['measured']} replay"
        f" ({params['runtime']}: runners boot in {params['runner_boot_seconds']:g} s)",
        fontsize=10,
    )
    ax.set_xlabel("idle runner-minutes per 1,000 jobs (booted, no job)")
    ax.set_ylabel("job wait, seconds: p95 (dot), p50 to p99 (bar)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
