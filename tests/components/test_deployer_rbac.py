"""The deploying identity's documented permissions cover what the k8s stack grants and creates.

RBAC refuses a Role granting rights its creator does not hold, so the manifest must hold every
rule of the listener's Role; the real apply of the stack as exactly this manifest is in
``tests/engine/test_k8s_stack.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gha_scalesets.components.k8s import listener_rules

MANIFEST = Path(__file__).resolve().parents[2] / "examples/k8s-deployer-rbac.yaml"


def _allowed(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_deployer_holds_every_right_of_the_listener_role() -> None:
    role, binding = yaml.safe_load_all(MANIFEST.read_text())
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    missing = _allowed(listener_rules()) - _allowed(role["rules"])
    assert missing == set(), "the deployer could not create the listener's Role"


def test_the_deployer_has_no_wildcard_and_no_escalation_verbs() -> None:
    role, _ = yaml.safe_load_all(MANIFEST.read_text())
    granted = _allowed(role["rules"])
    assert not any("*" in part for rule in granted for part in rule)
    assert not {verb for _, _, verb in granted} & {"escalate", "bind", "impersonate"}
