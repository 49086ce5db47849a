"""The component is a Pulumi program's code: it loads no cloud or HTTP SDK of the listener.

What it shares with the listener comes from ``gha_scalesets.contract`` (no SDK at all), so a
``pulumi preview`` never imports boto3, botocore, the Kubernetes client or httpx, nor any
module of the listener. Each runtime's
program runs under Pulumi mocks in a fresh interpreter (this process has loaded everything).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("boto3", "botocore", "kubernetes_asyncio", "httpx")
# What shows that the runtime's code paths that use the contract ran (not only their imports).
RENDERED = {
    "ec2": ("aws:ec2/launchTemplate:LaunchTemplate", "gha-scalesets runner bootstrap"),
    "ecs": ("aws:ecs/taskDefinition:TaskDefinition", "gha-scalesets runner entrypoint"),
    "k8s": ("kubernetes:apps/v1:Deployment", "LISTENER_SCALE_SETS"),
}
_PROGRAM = """
import base64, json, sys
import pulumi
from gha_scalesets import ScaleSetListener
from tests.support.components import OUTPUTS, listener_args
from tests.support.pulumi_mocks import Recorder, run

def declare(runtime):
    listener = ScaleSetListener("ci", listener_args(runtime))
    return {key: getattr(listener, key) for key in OUTPUTS}

rendered = {}
for runtime, typ in json.loads(sys.argv[1]).items():
    for mode in ("preview", "up"):
        recorder = Recorder()
        pulumi.runtime.set_mocks(recorder, "gha-scalesets", "dev", preview=mode == "preview")
        run(lambda: declare(runtime))
        inputs = [r.plain for r in recorder.of_type(typ)]
        text = json.dumps(inputs)
        for r in inputs:
            if isinstance(r.get("userData"), str):
                text += base64.b64decode(r["userData"]).decode()
        rendered[f"{runtime} {mode}"] = text
print(json.dumps({"loaded": sorted(sys.modules), "rendered": rendered}))
"""


def test_previewing_and_deploying_the_component_loads_no_cloud_or_http_sdk() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM, json.dumps({k: t for k, (t, _) in RENDERED.items()})],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ran = json.loads(done.stdout.splitlines()[-1])
    loaded = {name.split(".")[0] for name in ran["loaded"]}
    assert loaded.isdisjoint(FORBIDDEN), sorted(loaded & set(FORBIDDEN))
    assert "gha_scalesets.contract.names" in ran["loaded"]
    # The contract is all the component takes from the listener's side.
    assert [m for m in ran["loaded"] if m.startswith("gha_scalesets.listener")] == []
    for runtime, (_, marker) in RENDERED.items():
        # A preview leaves values of resources still to be created unknown; a deployment
        # renders the scripts and settings from the contract.
        assert marker in ran["rendered"][f"{runtime} up"], runtime
