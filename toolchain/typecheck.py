"""mypy over the package as it installs: every module under its ``gha_scalesets`` name.

    python -m toolchain.typecheck    # what `make lint-python` (so `make lint`, `make test`) runs

pyproject's package-dir maps the repository's top-level directories (``scaleset/``,
``listener/``, ...) into ``gha_scalesets``; mypy's command line names a module after its
directory (``scaleset.client``) while the code imports ``gha_scalesets.scaleset.client``, and
mypy cannot follow setuptools' editable-install finder. So the sources are built here from
pyproject's ``packages`` and ``package-dir``, one per module, and mypy runs with pyproject's
``[tool.mypy]``, its incremental cache in the repository's ``.mypy_cache`` whatever the working
directory (a warm run takes seconds, a cold one minutes). Exit status 1 on any error.
"""

from __future__ import annotations

import os
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

from mypy import build
from mypy.errors import CompileError
from mypy.main import process_options
from mypy.modulefinder import BuildSource

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"


def package_dirs(pyproject: Path = PYPROJECT) -> dict[str, Path]:
    """Each installed package and the directory its modules come from."""
    setuptools = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]
    mapped = {name: pyproject.parent / path for name, path in setuptools["package-dir"].items()}
    dirs = {}
    for package in setuptools["packages"]:
        parent = max((m for m in mapped if package == m or package.startswith(m + ".")), key=len)
        dirs[package] = mapped[parent].joinpath(*package[len(parent) :].split(".")[1:])
    return dirs


def modules(pyproject: Path = PYPROJECT) -> dict[str, Path]:
    """Every module of the installed package, by dotted name, and its file."""
    found = {}
    for package, directory in package_dirs(pyproject).items():
        for path in sorted(directory.glob("*.py")):
            found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


def check(argv: Sequence[str] = (), replace: Mapping[str, Path] | None = None) -> list[str]:
    """mypy's messages (errors and their notes) for the package; ``replace`` checks another
    file in place of a module (the tests check a broken copy of a runtime that way)."""
    _, options = process_options(
        ["--config-file", str(PYPROJECT), "--cache-dir", str(ROOT / ".mypy_cache"), *argv],
        require_targets=False,
    )
    files = modules() | dict(replace or {})
    sources = [BuildSource(str(path), module, base_dir=str(ROOT)) for module, path in files.items()]
    messages: list[str] = []

    def collect(_file: str | None, new: list[str], _serious: bool) -> None:
        messages.extend(new)

    try:
        build.build(sources, options, flush_errors=collect)
    except CompileError as blocking:  # a syntax error or a missing module stops the build
        if not messages:
            messages.extend(blocking.messages or ["mypy: blocking error"])
    return messages


def main(argv: Sequence[str]) -> int:
    """Check the package; print mypy's messages and a summary line; 1 when any error."""
    started = time.monotonic()
    messages = check(argv)
    for line in messages:
        print(line.removeprefix(f"{ROOT}/"))
    errors = sum(": error:" in line for line in messages)
    took = f"{time.monotonic() - started:.1f} s"
    if errors or any(": note:" not in line for line in messages):
        print(f"mypy: {errors} error(s) in {len(modules())} modules ({took})")
        return 1
    print(f"mypy: no issues in {len(modules())} modules ({took})")
    return 0


if __name__ == "__main__":
    status = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(status)  # as mypy's own command does: freeing its object graph takes seconds
