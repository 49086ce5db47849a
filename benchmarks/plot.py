"""The burst plot: runners launched and jobs waiting over time, ours vs. upstream-equivalent."""

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
