"""``python -m toolchain.release``: the release notes are the tag's changelog section, and a tag
or changelog not fit for a release stops the release workflow, saying what to fix."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gha_scalesets import __version__
from toolchain import release

ROOT = Path(__file__).resolve().parents[2]


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
