"""Release notes from CHANGELOG.md, and the checks a release tag must pass.

    python -m toolchain.release notes v0.1.0 > notes.md

The tag must be ``v`` + ``gha_scalesets.__version__``, and the changelog must have a dated
section for that version with a "State compatibility" part; the section's text is printed (the
GitHub release's notes). The release workflow runs this before it builds anything.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from gha_scalesets import __version__

CHANGELOG = Path(__file__).resolve().parents[1] / "CHANGELOG.md"
_SECTION = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>.+?))?\s*$", re.MULTILINE)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
STATE_HEADING = "### State compatibility"


class ReleaseError(Exception):
    """A tag or a changelog not fit for a release; the message says what to fix."""


def release_notes(changelog: str, version: str) -> str:
    """The body of ``version``'s changelog section (without its heading)."""
    sections = list(_SECTION.finditer(changelog))
    for index, match in enumerate(sections):
        if match["version"] != version:
            continue
        if not _DATE.match(match["date"] or ""):
            raise ReleaseError(
                f"CHANGELOG.md: the section of {version} has no release date: write"
                f" '## [{version}] - YYYY-MM-DD'"
            )
        end = sections[index + 1].start() if index + 1 < len(sections) else len(changelog)
        body = changelog[match.end() : end].strip()
        if STATE_HEADING not in body:
            raise ReleaseError(
                f"CHANGELOG.md: the section of {version} has no '{STATE_HEADING}' part: say what"
                " the release means for existing Pulumi state"
            )
        return body + "\n"
    raise ReleaseError(
        f"CHANGELOG.md has no section for {version}: rename '## [Unreleased]' to"
        f" '## [{version}] - YYYY-MM-DD' and start a new empty [Unreleased] above it"
    )


def check_tag(tag: str, version: str = __version__) -> str:
    """The version a release tag names; it must be the package's version."""
    if tag != f"v{version}":
        raise ReleaseError(
            f"tag {tag!r} does not match the package version {version}"
            f" (gha_scalesets/__init__.py): tag v{version}, or bump __version__ first"
        )
    return version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toolchain.release", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    notes = commands.add_parser("notes", help="check a release tag and print its release notes")
    notes.add_argument("tag", help="the release tag, v<version> (e.g. v0.1.0)")
    args = parser.parse_args(argv)
    try:
        version = check_tag(args.tag)
        sys.stdout.write(release_notes(CHANGELOG.read_text(), version))
    except ReleaseError as error:
        print(f"release: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
