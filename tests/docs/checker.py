"""What README.md and docs/ name must exist: links, anchors, make targets, commands, files.

Markdown is read the way GitHub renders it: headings and links outside fenced code blocks,
heading anchors by GitHub's slug rules (lowercase; punctuation other than ``-`` and ``_``
dropped; spaces to ``-``; a repeated slug gets ``-1``, ``-2``, ...). Commands and file paths
are read from code: inline code spans and the lines of fenced blocks.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"`([^`]+)`")
MAKE = re.compile(r"(?:^|[\s;&|(])make\s+([a-z][\w-]*)")
PYTHON_M = re.compile(r"python3?\s+-m\s+([\w.]+)((?:\s+[^\s#|&;<>]+)*)")
OPTION = re.compile(r"^--[a-z][\w-]*$")
SNIPPET = re.compile(r"^<!--\s*snippet:\s*(\S+)\s*-->$")
# Paths named in code that must exist (repository-relative): the project's own top folders.
REPO_PATH = re.compile(
    r"(?<![\w./~<$-])((?:benchmarks|components|docs|examples|listener|providers|scaleset"
    r"|simulator|tests|toolchain)/[\w./*-]*)"
)
HELP_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Problem:
    """One thing a document names that does not exist."""

    file: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file.name}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Line:
    number: int
    text: str
    in_fence: bool


def lines_of(path: Path) -> list[Line]:
    """The lines of ``path``, each marked inside a fenced block or not (fence lines are)."""
    out, fence = [], False
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if FENCE.match(text):
            fence = not fence
            out.append(Line(number, text, True))
            continue
        out.append(Line(number, text, fence))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (inline code and emphasis shown as their text)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


@functools.cache
def anchors(path: Path) -> frozenset[str]:
    """Every heading anchor of the Markdown file ``path``."""
    seen: dict[str, int] = {}
    found = set()
    for line in lines_of(path):
        if line.in_fence or not (m := HEADING.match(line.text)):
            continue
        base = slug(m.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def code_texts(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every inline code span and every line inside a fenced block."""
    for line in lines_of(path):
        if line.in_fence:
            if not FENCE.match(line.text):
                yield line.number, line.text
        else:
            for span in CODE_SPAN.findall(line.text):
                yield line.number, span


def check_links(path: Path, root: Path) -> Iterator[Problem]:
    """Relative links and images resolve inside ``root``; anchors name a heading."""
    for line in lines_of(path):
        if line.in_fence:
            continue
        for target in LINK.findall(CODE_SPAN.sub("", line.text)):
            if re.match(r"^[a-z][a-z+.-]*:", target):  # https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            if not resolved.is_relative_to(root.resolve()) or not resolved.exists():
                yield Problem(path, line.number, f"link to a missing file: {target}")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                yield Problem(path, line.number, f"link to a missing heading: {target}")


def make_targets(makefile: Path) -> frozenset[str]:
    return frozenset(re.findall(r"^([\w.-]+)\s*:(?!=)", makefile.read_text(), re.MULTILINE))


def check_make_targets(path: Path, root: Path) -> Iterator[Problem]:
    targets = make_targets(root / "Makefile")
    for number, code in code_texts(path):
        for target in MAKE.findall(code):
            if target not in targets:
                yield Problem(path, number, f"`make {target}`: no such target in the Makefile")


def check_paths(path: Path, root: Path) -> Iterator[Problem]:
    """Repository paths named in code (``examples/...``, ``tests/...``, ...) exist."""
    for number, code in code_texts(path):
        for named in REPO_PATH.findall(code):
            named = named.rstrip(".,")
            if not list(root.glob(named)):
                yield Problem(path, number, f"`{named}` does not exist")


# What a terminal shows as is: reStructuredText roles and literals, rich's boxes.
HELP_MARKUP = re.compile(r"``|:(class|func|mod|meth|attr):`|[╭╰│─]")


def is_ours(module: str) -> bool:
    """A module of this project (its help is run), as opposed to a dependency's."""
    return (PROJECT / module.split(".")[0] / "__init__.py").exists()


@functools.cache
def help_text(module: str, subcommand: str | None) -> str | None:
    """``python -m module [subcommand] --help``'s output, or None if it does not exit 0."""
    command = [sys.executable, "-m", module, *([subcommand] if subcommand else []), "--help"]
    done = subprocess.run(
        command, cwd=PROJECT, capture_output=True, text=True, timeout=HELP_TIMEOUT_SECONDS
    )
    return done.stdout + done.stderr if done.returncode == 0 else None


@dataclass(frozen=True)
class Command:
    """``python -m module [subcommand] --option ...`` as a document names it."""

    line: int
    module: str
    subcommand: str | None
    options: tuple[str, ...]


def commands(path: Path) -> Iterator[Command]:
    """Every ``python -m`` command in code, with the options named with it: in the same code
    text, or alone in an inline code span later in the same paragraph (``--quick``)."""
    last: Command | None = None
    for line in lines_of(path):
        if not line.text.strip():
            last = None  # a paragraph ends
        texts = [line.text] if line.in_fence else CODE_SPAN.findall(line.text)
        for text in texts:
            if last and not line.in_fence and OPTION.match(text.strip()):
                yield Command(line.number, last.module, last.subcommand, (text.strip(),))
                continue
            for module, rest in PYTHON_M.findall(text):
                words = rest.split()
                sub = words[0] if words and not words[0].startswith("-") else None
                options = tuple(w.split("=")[0] for w in words if OPTION.match(w.split("=")[0]))
                last = Command(line.number, module, sub, options)
                yield last


def check_commands(path: Path) -> Iterator[Problem]:
    """Our modules answer ``--help`` and list every option named; others are importable."""
    for command in commands(path):
        name = f"python -m {command.module}"
        if not is_ours(command.module):
            if importlib.util.find_spec(command.module) is None:
                yield Problem(path, command.line, f"`{name}`: no such module")
            continue
        # A first bare word is a subcommand (``listener run``) unless its --help fails.
        sub = command.subcommand and help_text(command.module, command.subcommand)
        text = sub or help_text(command.module, None)
        if text is None:
            yield Problem(path, command.line, f"`{name} --help` fails")
            continue
        for option in command.options:
            if not re.search(rf"{re.escape(option)}\b", text):
                yield Problem(path, command.line, f"`{name}`: its --help has no {option}")
        if markup := HELP_MARKUP.search(text):
            yield Problem(path, command.line, f"`{name} --help` shows markup: {markup[0]!r}")


def check_snippets(path: Path, root: Path) -> Iterator[Problem]:
    """A fenced block after ``<!-- snippet: FILE -->`` appears in FILE, line for line."""
    lines = lines_of(path)
    for index, line in enumerate(lines):
        if not (m := SNIPPET.match(line.text.strip())):
            continue
        source = root / m.group(1)
        block = []
        for inner in lines[index + 2 :]:
            if FENCE.match(inner.text):
                break
            block.append(inner.text.rstrip())
        if not source.exists():
            yield Problem(path, line.number, f"snippet source {m.group(1)} does not exist")
        elif "\n".join(block) not in "\n".join(x.rstrip() for x in source.read_text().split("\n")):
            yield Problem(path, line.number, f"snippet differs from {m.group(1)}")


def check(paths: list[Path], root: Path = PROJECT) -> list[Problem]:
    """Every problem of the documents ``paths`` (commands checked against this project)."""
    problems: list[Problem] = []
    for path in paths:
        problems += check_links(path, root)
        problems += check_make_targets(path, root)
        problems += check_paths(path, root)
        problems += check_snippets(path, root)
        problems += check_commands(path)
    return problems


def documents(root: Path = PROJECT) -> list[Path]:
    """README.md and every Markdown file of docs/."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]
