"""The CI and release workflows do what docs/releases.md says (actionlint checks their syntax in
``make lint`` and in tests/image/test_release_workflows.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def _workflow(name: str) -> dict[Any, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def _runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def _uses(workflow: dict[Any, Any]) -> list[str]:
    return [s["uses"] for job in workflow["jobs"].values() for s in job["steps"] if "uses" in s]


def test_ci_runs_lint_tests_and_the_release_build_on_pull_requests() -> None:
    ci = _workflow("ci.yml")

    assert "pull_request" in ci[True]  # YAML 1.1 reads the key `on` as True
    assert ci["permissions"] == {"contents": "read"}
    runs = {name: _runs(job) for name, job in ci["jobs"].items()}
    assert runs == {"lint": ["make lint"], "test": ["make test"], "dist": ["make dist"]}


def test_release_runs_on_version_tags_and_checks_the_tag_first() -> None:
    release = _workflow("release.yml")
    jobs = release["jobs"]

    assert release[True] == {"push": {"tags": ["v*.*.*"]}}
    assert release["permissions"] == {}
    assert any("python -m toolchain.release notes" in run for run in _runs(jobs["check"]))
    assert {jobs[name]["needs"] for name in ("dist", "images")} == {"check"}
    assert jobs["release"]["needs"] == ["pypi", "images"]


def test_release_grants_each_job_only_what_it_publishes_with() -> None:
    jobs = _workflow("release.yml")["jobs"]

    permissions = {name: job["permissions"] for name, job in jobs.items()}
    assert permissions == {
        "check": {"contents": "read"},
        "dist": {"contents": "read"},
        "pypi": {"id-token": "write"},  # trusted publishing: no stored PyPI token
        "images": {"contents": "read", "packages": "write"},
        "release": {"contents": "write"},
    }
    assert jobs["pypi"]["environment"] == "pypi"


def test_release_pushes_both_images_for_both_platforms() -> None:
    images = _workflow("release.yml")["jobs"]["images"]

    matrix = images["strategy"]["matrix"]["include"]
    contexts = {entry["image"]: entry["context"] for entry in matrix}
    assert contexts == {"gha-scalesets-listener": ".", "gha-scalesets-runner": "images/runner"}
    assert all((ROOT / context / "Dockerfile").is_file() for context in contexts.values())
    build = next(s for s in images["steps"] if s.get("uses", "").startswith("docker/build-push"))
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["push"] is True
    assert (build["with"]["provenance"], build["with"]["sbom"]) == ("mode=max", True)


def test_every_action_is_pinned_to_a_commit() -> None:
    uses = [u for name in ("ci.yml", "release.yml") for u in _uses(_workflow(name))]

    assert uses and [u for u in uses if not re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", u)] == []
