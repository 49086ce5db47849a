"""The settings the docs show are every setting the listener has, and they validate."""

from __future__ import annotations

import re

import yaml
from pydantic import BaseModel

from gha_scalesets.listener.config import (
    Ec2RuntimeConfig,
    EcsRuntimeConfig,
    K8sRuntimeConfig,
    ListenerSettings,
)
from tests.fixtures.docs import doc_section


def _yaml_blocks(text: str) -> list[dict]:
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)]


def _missing(model: type[BaseModel], shown: dict) -> list[str]:
    return sorted(set(model.model_fields) - set(shown))


def test_listener_settings_section_shows_every_top_level_setting() -> None:
    (shown,) = _yaml_blocks(doc_section("listener.md", "## Settings"))
    runtime_sections = {"ec2", "ecs", "k8s"}  # shown in runtimes.md
    assert [k for k in _missing(ListenerSettings, shown) if k not in runtime_sections] == []


def test_each_runtime_section_shows_every_setting_and_validates() -> None:
    for heading, key, model in (
        ("## EC2", "ec2", Ec2RuntimeConfig),
        ("## ECS", "ecs", EcsRuntimeConfig),
        ("## Kubernetes", "k8s", K8sRuntimeConfig),
    ):
        shown = next(b[key] for b in _yaml_blocks(doc_section("runtimes.md", heading)) if key in b)
        assert _missing(model, shown) == [], heading
        model.model_validate({k: v for k, v in shown.items() if v is not None})
