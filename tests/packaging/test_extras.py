"""The wheel as users install it: one namespace, and each extra enough for what it promises.

Each extra gets a fresh virtualenv outside the repository holding the built wheel (not an
editable install). What an extra promises is run there: the examples' programs under Pulumi
mocks for ``aws`` and ``k8s``, the command lines for ``listener`` and ``simulator``, and what it
must *not* pull in is checked too (a Kubernetes user has no AWS SDK, the listener no Pulumi).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.docs import doc_section
from tests.fixtures.packaging import EXTRAS, ROOT, CommandFailed, UserVenv, run_command

GENERIC_NAMES = ("components", "providers", "scaleset", "listener", "simulator")
# Third-party packages an extra must not install (its users never need them).
ABSENT = {
    None: ("pulumi", "boto3", "starlette"),
    "pulumi": ("pulumi_aws", "pulumi_kubernetes", "boto3"),
    # The component shares only gha_scalesets.contract with the listener: none of its SDKs.
    "aws": ("pulumi_kubernetes", "kubernetes_asyncio", "boto3", "structlog", "pydantic_settings"),
    "k8s": ("pulumi_aws", "boto3", "kubernetes_asyncio", "structlog", "pydantic_settings"),
    "listener": ("pulumi",),
    "simulator": ("pulumi", "boto3"),
}
# Run in the virtualenv beside a copy of tests/support/pulumi_mocks.py: an example under mocks.
_RUN_EXAMPLE = """
import json, runpy, sys
import pulumi
from mocks import Recorder, run

example, project, secrets = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
recorder = Recorder().install(stack="dev", project=project)
pulumi.runtime.set_all_config(
    {f"{project}:{k}": v for k, v in secrets.items()}, [f"{project}:{k}" for k in secrets]
)
run(lambda: runpy.run_path(example + "/__main__.py"))
print(json.dumps({"types": sorted(recorder.types()), "modules": sorted(sys.modules)}))
"""
EXAMPLE_OF_EXTRA = {
    "pulumi": ("scale-sets-only", {"githubConfigUrl": "https://github.com/acme"}),
    "aws": ("ecs-existing-stack", {"githubConfigUrl": "https://github.com/acme"}),
    "k8s": (
        "k8s-existing-stack",
        {"githubConfigUrl": "https://github.com/acme", "kubeconfig": "apiVersion: v1\n"},
    ),
}


def _absent(venv: UserVenv, cwd: Path, modules: tuple[str, ...]) -> list[str]:
    """Those of ``modules`` the virtualenv can import (should be none)."""
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    return json.loads(venv.python_run("-c", probe, *modules, cwd=cwd).replace("'", '"'))


def test_the_wheel_installs_gha_scalesets_and_nothing_else_at_the_top_level(
    user_venv: Callable[[str | None], UserVenv], tmp_path: Path
) -> None:
    venv = user_venv(None)
    listing = (
        "import importlib.metadata as m; "
        "print(sorted({f.parts[0] for f in m.files('gha-scalesets')}))"
    )
    top = venv.python_run("-c", listing, cwd=tmp_path)
    assert re.fullmatch(r"\['gha_scalesets', 'gha_scalesets-[\d.]+\.dist-info'\]\n", top), top
    assert sorted(p.name for p in venv.site_packages.glob("gha_scalesets*")) == [
        "gha_scalesets",
        *[p.name for p in venv.site_packages.glob("gha_scalesets-*.dist-info")],
    ]
    for name in GENERIC_NAMES:
        with pytest.raises(CommandFailed, match=f"No module named '{name}'"):
            venv.python_run("-c", f"import {name}", cwd=tmp_path)


def test_a_generic_name_from_the_repository_root_is_refused_not_loaded_twice(
    user_venv: Callable[[str | None], UserVenv],
) -> None:
    """From the repository root its directories are importable by path: the guard refuses."""
    venv = user_venv(None)
    for name in GENERIC_NAMES:
        with pytest.raises(CommandFailed, match=f"'{name}' is gha_scalesets.{name}"):
            venv.python_run("-c", f"import {name}", cwd=ROOT)


def test_the_public_api_without_the_pulumi_sdk_names_the_extra(
    user_venv: Callable[[str | None], UserVenv], tmp_path: Path
) -> None:
    venv = user_venv(None)
    venv.python_run("-c", "from gha_scalesets.scaleset import Client, PatCredentials", cwd=tmp_path)
    with pytest.raises(CommandFailed, match=re.escape("pip install 'gha-scalesets[pulumi]'")):
        venv.python_run("-c", "from gha_scalesets import ScaleSet", cwd=tmp_path)


@pytest.mark.parametrize("extra", [None, *EXTRAS])
def test_each_extra_is_consistent_and_leaves_out_what_its_users_never_need(
    extra: str | None, user_venv: Callable[[str | None], UserVenv], tmp_path: Path
) -> None:
    venv = user_venv(extra)
    assert "No broken requirements found" in venv.pip("check", cwd=tmp_path)
    assert _absent(venv, tmp_path, ABSENT[extra]) == []


@pytest.mark.parametrize("extra", sorted(EXAMPLE_OF_EXTRA))
def test_the_example_of_each_pulumi_extra_runs_on_that_extra_alone(
    extra: str, user_venv: Callable[[str | None], UserVenv], tmp_path: Path
) -> None:
    example, secrets = EXAMPLE_OF_EXTRA[extra]
    venv = user_venv(extra)
    shutil.copy(ROOT / "tests/support/pulumi_mocks.py", tmp_path / "mocks.py")
    (tmp_path / "run_example.py").write_text(_RUN_EXAMPLE)
    project = re.search(
        r"^name: (\S+)", (ROOT / "examples" / example / "Pulumi.yaml").read_text(), re.M
    )
    assert project
    secrets = {"githubToken": "ghp_packaging_test"} | secrets
    ran = json.loads(
        venv.python_run(
            "run_example.py",
            str(ROOT / "examples" / example),
            project[1],
            json.dumps(secrets),
            cwd=tmp_path,
        )
    )
    assert "pulumi-python:dynamic/github:ScaleSet" in ran["types"]
    if extra != "pulumi":
        assert "gha-scalesets:index:ScaleSetListener" in ran["types"]
    loaded = {m.split(".")[0] for m in ran["modules"]}
    assert not loaded & set(ABSENT[extra])


def test_the_listener_and_simulator_extras_run_their_commands(
    user_venv: Callable[[str | None], UserVenv], tmp_path: Path
) -> None:
    listener = user_venv("listener")
    assert "run" in listener.python_run("-m", "gha_scalesets.listener", "--help", cwd=tmp_path)
    every_module = (
        "import importlib, pkgutil, gha_scalesets.listener as p; "
        "[importlib.import_module(m.name) "
        "for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]"
    )
    listener.python_run("-c", every_module, cwd=tmp_path)
    simulator = user_venv("simulator")
    assert "--pat" in simulator.python_run("-m", "gha_scalesets.simulator", "--help", cwd=tmp_path)


def _site_packages_bytes(venv: UserVenv) -> int:
    return sum(f.stat().st_size for f in venv.site_packages.rglob("*") if f.is_file())


def test_the_documented_install_sizes_are_the_measured_ones(
    user_venv: Callable[[str | None], UserVenv], tmp_path: Path
) -> None:
    """docs/own-project.md's table: each extra's site-packages less a bare venv's (±10 %)."""
    bare = UserVenv(tmp_path / "bare", None)
    run_command([sys.executable, "-m", "venv", bare.path], cwd=tmp_path)
    baseline = _site_packages_bytes(bare)
    measured = {
        f"[{extra}]" if extra else None: round(
            (_site_packages_bytes(user_venv(extra)) - baseline) / 1e6
        )
        for extra in (None, *EXTRAS)
    }
    print("installed sizes (MB, site-packages less a bare venv's):", measured)
    table = doc_section("own-project.md", "### Which extra")
    documented = {
        m[1]: float(m[2])
        for m in re.finditer(r"^\| `gha-scalesets(\[\w+\])?` \|[^|]*\| ([\d.]+) MB \|", table, re.M)
    }
    assert set(documented) == set(measured)
    for key, size in measured.items():
        assert abs(documented[key] - size) <= 0.1 * size, (key, documented[key], size)
