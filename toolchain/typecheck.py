"""mypy over the package as it installs: every module under its ``gha_scalesets`` name.

    python -m toolchain.typecheck          # what `make lint-python` (so `make test`) runs

pyproject's package-dir maps the repository's top-level directories (``scaleset/``,
``listener/``, ...) into ``gha_scalesets``; mypy's command line names a module after its
directory (``scaleset.client``) while the code imports ``gha_scalesets.scaleset.client``, and
mypy cannot follow setuptools' editable-install finder. So the sources are built here from
pyproject's ``packages`` and ``package-dir``, one per module, and mypy runs with pyproject's
``[tool.mypy]`` (its incremental cache in ``.mypy_cache``). Exit status 1 on any error.
"""

from __future__ import annotations

import sys
import time
import tomllib
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


def sources(pyproject: Path = PYPROJECT) -> list[BuildSource]:
    """One mypy source per module of the installed package, under its dotted name."""
    found = []
    for package, directory in package_dirs(pyproject).items():
        for path in sorted(directory.glob("*.py")):
            module = package if path.stem == "__init__" else f"{package}.{path.stem}"
            found.append(BuildSource(str(path.relative_to(ROOT)), module, base_dir=str(ROOT)))
    return found


def main(argv: list[str]) -> int:
    """Check the package; print mypy's messages and a summary line; 1 when any error."""
    started = time.monotonic()
    _, options = process_options(["--config-file", str(PYPROJECT), *argv], require_targets=False)
    checked = sources()
    messages: list[str] = []

    def show(_file: str | None, new: list[str], _serious: bool) -> None:
        messages.extend(new)
        for line in new:
            print(line)

    try:
        build.build(checked, options, flush_errors=show)
    except CompileError as blocking:  # a syntax error or a missing module stops the build
        if not messages:
            for line in blocking.messages:
                print(line)
        messages.extend(blocking.messages or ["mypy: blocking error"])
    errors = sum(": error:" in line for line in messages)
    took = f"{time.monotonic() - started:.1f} s"
    if errors or (messages and not all(": note:" in line for line in messages)):
        print(f"mypy: {errors} error(s) in {len(checked)} modules ({took})")
        return 1
    print(f"mypy: no issues in {len(checked)} modules ({took})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
