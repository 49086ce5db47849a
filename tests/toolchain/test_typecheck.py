"""The type checker `make lint-python` runs: the package is clean, and a runtime that stops
satisfying the ``Runtime`` protocol fails it.

Both checks use the incremental cache in ``.mypy_cache`` (`make test` warms it in lint-python):
a broken copy rechecks only its module and what depends on it.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from toolchain import typecheck

RUNTIMES = Path(typecheck.ROOT, "listener", "runtimes")
# module of the package -> the runtime class it defines
CHECKED = {
    "ec2": "Ec2Runtime",
    "ecs": "EcsRuntime",
    "k8s": "K8sRuntime",
    "local": "LocalRuntime",
}


def test_the_package_type_checks_clean() -> None:
    assert typecheck.check() == []


def test_every_type_ignore_names_its_error_code_and_why() -> None:
    explained = re.compile(r"# type: ignore\[[a-z-]+(, [a-z-]+)*\]  # \S")
    unexplained = [
        f"{path.relative_to(typecheck.ROOT)}:{number}"
        for path in typecheck.modules().values()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "type: ignore" in line and not explained.search(line)
    ]
    assert unexplained == []


def test_every_aws_service_the_component_uses_is_read_by_mypy() -> None:
    """pyproject lets mypy read only some of pulumi_aws; a service left out would be Any."""
    overrides = tomllib.loads(typecheck.PYPROJECT.read_text())["tool"]["mypy"]["overrides"]
    read = {
        module.removeprefix("pulumi_aws.").removesuffix(".*")
        for override in overrides
        if override.get("follow_imports") == "normal"
        for module in override["module"]
    }
    used = {
        service
        for path in Path(typecheck.ROOT, "components").glob("*.py")
        for service in re.findall(r"\baws\.([a-z0-9_]+)\.", path.read_text())
    }
    assert used
    assert used <= read


def test_a_runtime_missing_a_protocol_method_is_reported(tmp_path: Path) -> None:
    broken = {}
    for module in CHECKED:
        source = (RUNTIMES / f"{module}.py").read_text()
        renamed = source.replace("    async def list_runners(", "    async def list_all_runners(")
        assert renamed != source
        broken[f"gha_scalesets.listener.runtimes.{module}"] = tmp_path / f"{module}.py"
        broken[f"gha_scalesets.listener.runtimes.{module}"].write_text(renamed)

    messages = typecheck.check(replace=broken)

    for module, cls in CHECKED.items():
        at = f"{tmp_path / module}.py:"
        assert any(
            line.startswith(at) and f'got "{cls}", expected "Runtime"' in line for line in messages
        ), messages
        assert any(
            line.startswith(at) and f'"{cls}" is missing following "Runtime" protocol member'
            for line in messages
        ), messages
        assert any(line.startswith(at) and line.endswith(" list_runners") for line in messages)


def _runtime_classes(path: Path) -> set[str]:
    """Public classes of ``path`` with a ``launch`` method: runtimes (not the protocol)."""
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and not node.name.startswith("_")
        and "Protocol" not in {ast.unparse(base) for base in node.bases}
        and any(
            isinstance(item, ast.AsyncFunctionDef) and item.name == "launch" for item in node.body
        )
    }


def _checked_classes(path: Path) -> set[str]:
    """Classes ``path`` passes where a ``Runtime`` is expected in ``_satisfies_runtime``."""
    return {
        ast.unparse(node.args.args[0].annotation)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef)
        and node.name == "_satisfies_runtime"
        and node.args.args[0].annotation is not None
        and ast.unparse(node.returns) == "Runtime"
    }


@pytest.mark.parametrize("path", sorted(RUNTIMES.glob("*.py")), ids=lambda p: p.stem)
def test_every_runtime_of_the_package_is_checked_against_the_protocol(path: Path) -> None:
    runtimes = _runtime_classes(path)
    assert runtimes == _checked_classes(path)
    assert runtimes == ({CHECKED[path.stem]} if path.stem in CHECKED else set())
