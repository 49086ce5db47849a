"""``examples/scale-sets-only`` through the real engine against the simulator: the program file
as it is, in a stack of its own project, configured as its docstring says."""

from __future__ import annotations

import runpy

from pulumi import automation as auto

from benchmarks.engine import Engine, run
from gha_scalesets.scaleset import SyncClient
from gha_scalesets.simulator.testing import SimulatorServer
from tests.examples.conftest import EXAMPLES, project_of
from tests.fixtures.sim import SIM_PAT, Requests

EXAMPLE = "scale-sets-only"


def _program() -> None:
    runpy.run_path(str(EXAMPLES / EXAMPLE / "__main__.py"))


def test_scale_sets_only_example_up_unchanged_preview_and_destroy(
    engine: Engine, sim: SimulatorServer, github: SyncClient, requests: Requests
) -> None:
    stack = engine.stack(_program, project=project_of(EXAMPLE))
    stack.set_all_config(
        {
            "githubConfigUrl": auto.ConfigValue(sim.config_url("acme")),
            "githubToken": auto.ConfigValue(SIM_PAT, secret=True),
        }
    )

    done = run(stack.up)
    assert done.ops == {"linux": ["create"], "gpu": ["create"]}
    ids = done.result.outputs["scaleSetIds"].value
    assert set(ids) == {"linux-x64", "gpu-x64"}
    gpu = github.get_scale_set(int(ids["gpu-x64"]))
    assert (gpu.name, gpu.runner_setting.disable_update) == ("gpu-x64", True)
    requests.delta()

    again = run(stack.preview)
    assert again.result.change_summary == {"same": 3}  # the two scale sets and the stack
    assert sum(requests.delta().values()) == 0

    gone = run(stack.destroy)
    assert gone.ops == {"linux": ["delete"], "gpu": ["delete"]}
    assert github.get_scale_set_by_name(gpu.runner_group_id, "gpu-x64") is None
