"""Runner specs for the runtime tests."""

from __future__ import annotations

import base64

from gha_scalesets.listener.runtimes.base import RunnerSpec


def jit_config(name: str) -> str:
    """A JIT-config-sized (about 2 KB) base64 secret, unique per runner."""
    return base64.b64encode(f"jit-secret-of-{name}:".encode() * 80).decode()


def specs(
    n: int, scale_set_id: int = 7, prefix: str = "linux-x64", start: int = 0
) -> list[RunnerSpec]:
    return [
        RunnerSpec(
            scale_set_id=scale_set_id,
            scale_set_name="linux-x64",
            runner_name=f"{prefix}-{i:05d}",
            runner_id=1000 + i,
            jit_config=jit_config(f"{prefix}-{i:05d}"),
        )
        for i in range(start, start + n)
    ]
