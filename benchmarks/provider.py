"""Provider: GitHub requests of the ScaleSet dynamic provider for N scale sets.

The provider class is called as the engine calls it: ``check`` then ``create`` per resource
(``pulumi up`` of a new stack), ``check`` + ``diff`` per resource (``pulumi preview`` with no
change: dynamic resources are not read during a preview), and ``read`` per resource
(``pulumi refresh``). Each phase runs in a fresh process, as each Pulumi command starts its own
provider host, so every phase pays its own auth chain. Requests are counted by the simulator.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

from benchmarks.harness import ORG, PAT, SimulatorProcess, auth_requests, requests_between, total


def _phase(
    phase: str, config_url: str, count: int, state: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    from providers.scale_set_provider import ScaleSetProvider  # in the phase's own process

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


def run(*, scale_sets: int = 50, seed: int = 1) -> dict[str, Any]:
    result: dict[str, Any] = {"parameters": {"scale_sets": scale_sets, "seed": seed}}
    with SimulatorProcess(long_poll_seconds=5.0, seed=seed) as sim:
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
    return result
