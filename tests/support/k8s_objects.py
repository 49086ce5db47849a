"""What every runner Pod and its Secret must look like, on the fake and on a real apiserver."""

from __future__ import annotations

import base64
import json
from typing import Any

from gha_scalesets.listener.runtimes.base import RunnerSpec


def check_runner_objects(pod: dict[str, Any], secret: dict[str, Any], spec: RunnerSpec) -> None:
    """Labels, a token-less pod that references the JIT config (never holds it), the config
    in the Secret, and the Secret owned by the Pod."""
    assert pod["metadata"]["labels"]["gha-scaleset/id"] == str(spec.scale_set_id)
    assert pod["metadata"]["labels"]["gha-scaleset/runner-name"] == pod["metadata"]["name"]
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["automountServiceAccountToken"] is False
    [container] = pod["spec"]["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    secret_name = secret["metadata"]["name"]
    assert container["env"] == [
        {
            "name": "ACTIONS_RUNNER_INPUT_JITCONFIG",
            "valueFrom": {"secretKeyRef": {"name": secret_name, "key": "jitconfig"}},
        }
    ]
    assert spec.jit_config not in json.dumps(pod)
    assert base64.b64decode(secret["data"]["jitconfig"]).decode() == spec.jit_config
    [owner] = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "Pod",
        pod["metadata"]["name"],
        pod["metadata"]["uid"],
    )


def oom_killed(image: str) -> list[dict[str, Any]]:
    """The ``containerStatuses`` of a runner container killed for memory (exit 137)."""
    return [
        {
            "name": "runner",
            "image": image,
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
        }
    ]
