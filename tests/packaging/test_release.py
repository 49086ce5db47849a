"""What a release ships: sdist and wheel from ``python -m build``, accepted by ``twine check``,
the wheel holding exactly the package and its metadata, one version everywhere, the licence and
a changelog whose every release says what it means for Pulumi state."""

from __future__ import annotations

import email.parser
import json
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from gha_scalesets import __version__
from gha_scalesets.scaleset.conventions import UserAgent
from toolchain import release

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DIST_INFO = f"gha_scalesets-{__version__}.dist-info"
# Where a document names a released artifact by version: image tags, the git tag, User-Agent.
VERSION_MENTIONS = re.compile(
    r"gha-scalesets-(?:listener|runner):(\d+\.\d+\.\d+)"
    r"|gha-scalesets@v(\d+\.\d+\.\d+)"
    r"|\"system\":\"gha-scalesets\",\"version\":\"(\d+\.\d+\.\d+)\""
)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build``: the sdist, then the wheel built from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
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


def test_the_licence_is_apache_2() -> None:
    text = (ROOT / "LICENSE").read_text()

    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert PYPROJECT["project"]["license"] == "Apache-2.0"


def _documents() -> list[Path]:
    return [
        ROOT / "README.md",
        ROOT / "Makefile",
        *ROOT.glob("Pulumi.example-*.yaml"),
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "examples").rglob("*.py"),
        *(ROOT / "examples").rglob("*.txt"),
    ]


def test_one_version_the_user_agent_the_image_tags_and_the_docs_read() -> None:
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert json.loads(str(UserAgent()))["version"] == __version__

    stale = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in _documents()
        for match in VERSION_MENTIONS.finditer(path.read_text())
        if __version__ not in match.groups()
    ]
    assert stale == []
    mentions = sum(len(VERSION_MENTIONS.findall(p.read_text())) for p in _documents())
    assert mentions > 5


def test_make_image_tags_with_the_package_version() -> None:
    done = subprocess.run(
        ["make", "-n", "image", "runner-image"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert f"--tag gha-scalesets-listener:{__version__}" in done.stdout
    assert f"--tag gha-scalesets-runner:{__version__}" in done.stdout


def test_the_changelog_has_a_section_for_this_version() -> None:
    notes = release.release_notes(release.CHANGELOG.read_text(), __version__)

    assert notes.startswith("### Added")
    assert release.STATE_HEADING in notes


def test_every_release_in_the_changelog_says_what_it_means_for_state() -> None:
    changelog = release.CHANGELOG.read_text()
    versions = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - ", changelog, re.MULTILINE)

    assert __version__ in versions
    for version in versions:
        release.release_notes(changelog, version)  # raises for a release without its note
    first = release.release_notes(changelog, versions[-1])
    assert "gha_scalesets.providers.scale_set_provider.ScaleSetProvider" in first


_CHANGELOG = """# Changelog

## [Unreleased]

## [1.1.0] - 2027-01-02

### Fixed

- a fix

### State compatibility

- none needed

## [1.0.0] - Unreleased

### Added

- everything
"""


def test_release_notes_are_the_tags_changelog_section() -> None:
    assert release.release_notes(_CHANGELOG, "1.1.0") == (
        "### Fixed\n\n- a fix\n\n### State compatibility\n\n- none needed\n"
    )


@pytest.mark.parametrize(
    ("changelog", "version", "message"),
    [
        (_CHANGELOG, "2.0.0", "CHANGELOG.md has no section for 2.0.0: rename '## [Unreleased]'"),
        (_CHANGELOG, "1.0.0", "the section of 1.0.0 has no release date"),
        (
            _CHANGELOG.replace("### State compatibility", "### Notes"),
            "1.1.0",
            "the section of 1.1.0 has no '### State compatibility' part",
        ),
    ],
)
def test_release_notes_refuse_an_unfinished_changelog(changelog, version, message) -> None:
    with pytest.raises(release.ReleaseError, match=re.escape(message)):
        release.release_notes(changelog, version)


def test_a_tag_must_be_the_package_version() -> None:
    assert release.check_tag(f"v{__version__}") == __version__
    with pytest.raises(release.ReleaseError, match="does not match the package version"):
        release.check_tag("v99.0.0")


def test_the_release_command_prints_the_notes_or_says_what_is_wrong() -> None:
    command = [sys.executable, "-m", "toolchain.release", "notes"]
    good = subprocess.run([*command, f"v{__version__}"], cwd=ROOT, capture_output=True, text=True)
    bad = subprocess.run([*command, "v0.0.0-bad"], cwd=ROOT, capture_output=True, text=True)

    assert (good.returncode, bad.returncode) == (0, 1)
    assert good.stdout == release.release_notes(release.CHANGELOG.read_text(), __version__)
    assert bad.stderr.startswith("release: tag 'v0.0.0-bad' does not match")
