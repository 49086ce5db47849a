"""What a release ships: sdist and wheel from ``python -m build`` (of the tracked files), accepted
by ``twine check``, the wheel holding exactly the package and its metadata and nothing else.
The version, licence and changelog checks that need no build are in tests/toolchain/."""

from __future__ import annotations

import email.parser
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from gha_scalesets import __version__
from tests.fixtures.packaging import ROOT, tracked_copy

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DIST_INFO = f"gha_scalesets-{__version__}.dist-info"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build``: the sdist, then the wheel built from that sdist."""
    work = tmp_path_factory.mktemp("release")
    out = work / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(tracked_copy(work))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def expected_wheel_files() -> set[str]:
    """Every module under the directories pyproject maps into ``gha_scalesets`` (a subpackage
    left out of its ``packages`` list is then missing from the wheel), the package data, and
    the metadata."""
    setuptools = PYPROJECT["tool"]["setuptools"]
    files = set()
    for package, directory in setuptools["package-dir"].items():
        root = ROOT / directory
        prefix = package.replace(".", "/")
        files |= {
            f"{prefix}/{path.relative_to(root).as_posix()}"
            for path in root.rglob("*.py")
            if "__pycache__" not in path.parts
        }
    for package, patterns in setuptools["package-data"].items():
        files |= {f"{package.replace('.', '/')}/{pattern}" for pattern in patterns}
    metadata = ("METADATA", "WHEEL", "RECORD", "top_level.txt", "licenses/LICENSE")
    return files | {f"{DIST_INFO}/{name}" for name in metadata}


def wheel_problems(names: Iterable[str], expected: set[str]) -> list[str]:
    names = set(names)
    return [f"missing from the wheel: {n}" for n in sorted(expected - names)] + [
        f"not part of the package: {n}" for n in sorted(names - expected)
    ]


def _wheel(dist: Path) -> Path:
    return dist / f"gha_scalesets-{__version__}-py3-none-any.whl"


def _sdist(dist: Path) -> Path:
    return dist / f"gha_scalesets-{__version__}.tar.gz"


def test_build_makes_an_sdist_and_a_wheel_that_twine_check_accepts(dist: Path) -> None:
    assert sorted(dist.iterdir()) == [_wheel(dist), _sdist(dist)]

    done = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(_wheel(dist)), str(_sdist(dist))],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2


def test_the_wheel_holds_the_package_and_its_metadata_and_nothing_else(dist: Path) -> None:
    with zipfile.ZipFile(_wheel(dist)) as wheel:
        names = wheel.namelist()

    assert wheel_problems(names, expected_wheel_files()) == []
    assert len(names) > 100
    # One import name: nothing but gha_scalesets and its metadata at the top level.
    assert {name.split("/")[0] for name in names} == {"gha_scalesets", DIST_INFO}


def test_the_wheel_check_names_a_missing_subpackage_and_a_stray_file() -> None:
    expected = expected_wheel_files()
    runtimes = {n for n in expected if n.startswith("gha_scalesets/listener/runtimes/")}
    shipped = (expected - runtimes) | {"tests/conftest.py"}

    problems = wheel_problems(shipped, expected)

    assert "missing from the wheel: gha_scalesets/listener/runtimes/local.py" in problems
    assert "not part of the package: tests/conftest.py" in problems
    assert len(problems) == len(runtimes) + 1


def test_the_metadata_names_the_version_licence_python_and_extras(dist: Path) -> None:
    with zipfile.ZipFile(_wheel(dist)) as wheel:
        metadata = email.parser.Parser().parsestr(wheel.read(f"{DIST_INFO}/METADATA").decode())
        licence = wheel.read(f"{DIST_INFO}/licenses/LICENSE").decode()

    assert (metadata["Name"], metadata["Version"]) == ("gha-scalesets", __version__)
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["License-File"] == "LICENSE"
    assert metadata["Requires-Python"] == ">=3.11"
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    assert set(metadata.get_all("Provides-Extra")) == extras
    assert licence == (ROOT / "LICENSE").read_text()


def test_the_sdist_carries_the_licence_the_changelog_and_the_sources(dist: Path) -> None:
    with tarfile.open(_sdist(dist)) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}

    for wanted in ("LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml", "listener/app.py"):
        assert wanted in names
    assert not any(name.startswith(("tests/", "benchmarks/", ".github/")) for name in names)
