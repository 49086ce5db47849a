"""Provider: GitHub requests of the ScaleSet dynamic provider for N scale sets.

The provider class is called as the engine calls it: ``check`` then ``create`` per resource
(``pulumi up`` of a new stack), ``check`` + ``diff`` per resource (``pulumi preview`` with no
change: dynamic resources are not read during a preview), and ``read`` per resource
(``pulumi refresh``). Each phase runs in a fresh process, as each Pulumi command starts its own
provider host, so every phase pays its own auth chain. Requests are counted by the simulator.

With ``engine=True`` the same three operations also run through the real Pulumi engine
(`make toolchain`): ``pulumi up``, an unchanged ``pulumi preview`` and ``pulumi refresh`` of an
inline program declaring the scale sets, timed (wall seconds) and counted.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
from pulumi import automation as auto

from benchmarks.harness import ORG, PAT, auth_requests, requests_between, total
from gha_scalesets.providers import ScaleSet, ScaleSetArgs
from tests.support.engine import Engine, ToolchainMissing
from tests.support.processes import SimulatorProcess


def _phase(
    phase: str, config_url: str, count: int, state: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    from gha_scalesets.providers.scale_set_provider import (
        ScaleSetProvider,  # in the phase's own process
    )

    provider = ScaleSetProvider()
    outputs = []
    for i in range(count):
        inputs = {
            "github_config_url": config_url,
            "name": f"prov-{i}",
            "labels": [f"prov-{i}", "linux"],
            "github_token": PAT,
        }
        checked = provider.check({}, inputs).inputs
        if phase == "create":
            outputs.append(provider.create(checked).outs)
        elif phase == "preview":
            provider.diff(str(state[i]["scale_set_id"]), state[i], checked)
        else:
            provider.read(str(state[i]["scale_set_id"]), state[i])
    return outputs


def _in_process(
    phase: str, config_url: str, count: int, state: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_phase, (phase, config_url, count, state))


def _program(config_url: str, count: int) -> Callable[[], None]:
    def program() -> None:
        token = pulumi.Config().require_secret("githubToken")
        for i in range(count):
            name = f"engine-{i}"
            ScaleSet(
                name,
                ScaleSetArgs(
                    github_config_url=config_url,
                    name=name,
                    labels=[name, "linux"],
                    github_token=token,
                ),
            )

    return program


def _through_engine(sim: SimulatorProcess, count: int) -> dict[str, Any]:
    """``pulumi up`` / unchanged ``preview`` / ``refresh`` by the real engine: seconds, requests."""
    with tempfile.TemporaryDirectory(prefix="gha-engine-bench-") as root:
        try:
            engine = Engine(Path(root))
        except ToolchainMissing as missing:
            return {"unavailable": str(missing)}
        stack = engine.stack(_program(sim.config_url(ORG), count), name="bench")
        stack.set_config("githubToken", auto.ConfigValue(PAT, secret=True))
        figures: dict[str, Any] = {}
        for phase, operation in (
            ("up", stack.up),
            ("preview", stack.preview),
            ("refresh", stack.refresh),
        ):
            before, started = sim.stats(), time.monotonic()
            operation()
            requests = requests_between(before, sim.stats())
            figures[phase] = {
                "seconds": round(time.monotonic() - started, 1),
                "requests": total(requests),
            }
        stack.destroy()
        return figures


def run(*, scale_sets: int = 50, seed: int = 1, engine: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {"parameters": {"scale_sets": scale_sets, "seed": seed}}
    with SimulatorProcess(PAT, long_poll_seconds=5.0, seed=seed) as sim:
        state: list[dict[str, Any]] = []
        for phase in ("create", "preview", "refresh"):
            before = sim.stats()
            outputs = _in_process(phase, sim.config_url(ORG), scale_sets, state)
            state = outputs or state
            requests = requests_between(before, sim.stats())
            result[phase] = {
                "requests": total(requests),
                "auth_chain_requests": auth_requests(requests),
                "requests_per_scale_set": round(total(requests) / scale_sets, 3),
                "by_route": requests,
            }
        if engine:
            result["engine"] = _through_engine(sim, scale_sets)
    return result
