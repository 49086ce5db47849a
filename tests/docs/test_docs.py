"""README.md and docs/ name only what exists, and the checker catches what does not."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from benchmarks import report
from tests.docs import checker


@pytest.fixture(scope="module")
def problems() -> list[str]:
    """Every problem of the real documents; each distinct ``--help`` runs once, in parallel."""
    paths = checker.documents()
    wanted = {
        (c.module, sub)
        for path in paths
        for c in checker.commands(path)
        if checker.is_ours(c.module)
        for sub in {None, c.subcommand}
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda args: checker.help_text(*args), wanted))
    return [str(p) for p in checker.check(paths)]


def test_readme_and_docs_name_only_what_exists(problems) -> None:
    assert problems == []


def test_readme_is_a_landing_page_linking_every_guide() -> None:
    readme = (checker.PROJECT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    guides = sorted(p.name for p in (checker.PROJECT / "docs").glob("*.md"))
    assert [g for g in guides if f"(docs/{g})" not in readme] == []


def test_every_example_is_shown_in_the_docs() -> None:
    text = "\n".join(p.read_text() for p in checker.documents())
    examples = sorted(p.name for p in (checker.PROJECT / "examples").iterdir() if p.is_dir())
    assert examples and [e for e in examples if f"examples/{e}" not in text] == []


def test_benchmark_table_is_the_one_generated_from_the_results() -> None:
    results = json.loads(report.RESULTS.read_text())
    committed = report.DOC.read_text()
    assert report.render(committed, results) == committed
    assert report.SCALE_START in committed and "scale" in results  # the scale table is there


def test_benchmark_report_rewrites_a_stale_table(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"intro\n{report.START}\n| stale |\n{report.END}\nafter\n")
    results = {
        "memory": {"parameters": {"scale_sets": 2}, "steady_rss_mb": 1, "burst_peak_rss_mb": 2}
    }

    assert report.render(doc.read_text(), results) == (
        f"intro\n{report.START}\n| scenario | metric | ours | upstream-equivalent / baseline |\n"
        "|---|---|---|---|\n| memory (2 scale sets) | listener RSS steady / burst | 1 MB / 2 MB |"
        f" target < 150 MB |\n{report.END}\nafter\n"
    )


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("The real toolchain (`make toolchain`)", "the-real-toolchain-make-toolchain"),
        ("What `pulumi preview` shows", "what-pulumi-preview-shows"),
        (
            "Figures (full run: 30-job bursts, 0.3 s jobs)",
            "figures-full-run-30-job-bursts-03-s-jobs",
        ),
        (
            "Stack configuration (namespace `gha-scalesets`)",
            "stack-configuration-namespace-gha-scalesets",
        ),
        ("Use `runner_dir` [here](x.md)", "use-runner_dir-here"),
    ],
)
def test_anchors_follow_githubs_slug_rules(heading, anchor) -> None:
    assert checker.slug(heading) == anchor


def _broken_docs(root: Path) -> Path:
    """A tiny repository whose README names things that do not exist, one per line."""
    (root / "docs").mkdir()
    (root / "docs" / "guide.md").write_text("# Guide\n\n## Twice\n\n## Twice\n")
    (root / "examples").mkdir()
    (root / "examples" / "real.py").write_text("x = 1\ny = 2\n")
    (root / "Makefile").write_text("PY := python\ntest: lint\n\tpytest\nlint:\n\truff\n")
    readme = root / "README.md"
    readme.write_text(
        "# Title\n\n"
        "[fine](docs/guide.md#twice-1) and [self](#title) and [web](https://example.com/x)\n"
        "[gone](docs/missing.md)\n"
        "[no heading](docs/guide.md#twice-2)\n"
        "`make test` then `make deploy`\n"
        "`python -m benchmarks --only burst --frobnicate`, alone: `--quick` and `--nope`\n"
        "`python -m no_such_module_here`\n"
        "see `examples/missing.py` and `examples/real.py`\n"
        "<!-- snippet: examples/real.py -->\n```python\nx = 1\ny = 3\n```\n"
        "```\n[inside a fence](nowhere.md) is code\n```\n"
    )
    return readme


def test_checker_reports_each_broken_reference(tmp_path: Path) -> None:
    readme = _broken_docs(tmp_path)

    found = [str(p) for p in checker.check([readme], root=tmp_path)]

    assert found == [
        "README.md:4: link to a missing file: docs/missing.md",
        "README.md:5: link to a missing heading: docs/guide.md#twice-2",
        "README.md:6: `make deploy`: no such target in the Makefile",
        "README.md:9: `examples/missing.py` does not exist",
        "README.md:10: snippet differs from examples/real.py",
        "README.md:7: `python -m benchmarks`: its --help has no --frobnicate",
        "README.md:7: `python -m benchmarks`: its --help has no --nope",
        "README.md:8: `python -m no_such_module_here`: no such module",
    ]


def test_the_real_readme_with_one_link_broken_fails(tmp_path: Path) -> None:
    readme = (checker.PROJECT / "README.md").read_text()
    broken = readme.replace("(docs/runtimes.md)", "(docs/runtime.md)", 1)
    assert broken != readme
    copy = tmp_path / "README.md"
    copy.write_text(broken)
    for folder in ("docs", "examples"):
        shutil.copytree(checker.PROJECT / folder, tmp_path / folder)
    for name in ("LICENSE", "CHANGELOG.md"):
        shutil.copy(checker.PROJECT / name, tmp_path / name)

    found = [str(p) for p in checker.check_links(copy, tmp_path)]

    line = _line_of(broken, "(docs/runtime.md)")
    assert found == [f"README.md:{line}: link to a missing file: docs/runtime.md"]


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_code_and_stack_files_point_to_guides_that_exist() -> None:
    """Docstrings, messages and example stack files that say "see docs/x.md" name a real guide."""
    tracked = subprocess.run(
        ["git", "ls-files", "*.py", "*.yaml", "Dockerfile", "Makefile"],
        cwd=checker.PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    named = {
        (path, guide)
        for path in tracked
        if not path.startswith("tests/docs/")  # these name broken guides on purpose
        for guide in re.findall(r"\bdocs/[\w-]+\.md", (checker.PROJECT / path).read_text())
    }
    assert {g for _, g in named} >= {"docs/components.md"}  # the example stacks' pointer
    assert [(p, g) for p, g in sorted(named) if not (checker.PROJECT / g).exists()] == []


def test_readme_headline_figures_are_the_measured_ones() -> None:
    """README's "Why" quotes benchmarks/results.json and chaos-results.json as they stand."""
    readme = (checker.PROJECT / "README.md").read_text()
    results = json.loads(report.RESULTS.read_text())
    chaos = json.loads((report.HERE / "chaos-results.json").read_text())["summary"]
    burst, idle = results["burst"], results["idle"]
    aws = results["aws-burst"]["ec2"]
    on, up = (results["limits"]["modes"][m] for m in ("pacing_on", "upstream_equivalent"))
    several = results["limits"]["credentials"]
    quoted = [
        f"**{aws['new']['seconds_to_all_launched']:.1f} s**, "
        f"{aws['new']['throttling_answers']} throttling answers, against "
        f"{aws['today']['seconds_to_all_launched']:.1f} s and "
        f"{aws['today']['throttling_answers']} for one call per runner "
        f"({aws['speedup']}x)",
        f"**{on['simulated_minutes_to_last_runner']:g} min, {on['refused']} requests refused**"
        f" ({on['throughput_percent_of_ceiling']:g} % of the ceiling's best), against"
        f" {up['simulated_minutes_to_last_runner']:g} min and {up['refused']} refused",
        f"{several['2']['simulated_minutes_to_last_runner']:g} /"
        f" {several['4']['simulated_minutes_to_last_runner']:g} min with 2 / 4 credentials",
        f"**{burst['ours']['seconds_to_all_launched']:.2f} s**",
        f"{burst['upstream_equivalent']['seconds_to_all_launched']:.1f} s",
        f"({burst['speedup']}x)",
        f"**{idle['ours']['auth_chain_runs_per_hour']:g}**, against "
        f"{idle['upstream_equivalent']['auth_chain_runs_per_hour']:g}",
        f"in {chaos['scenarios']} fault scenarios ({chaos['faults_injected']} faults)",
    ]
    assert [q for q in quoted if q not in readme] == []
    lost = (chaos[k] for k in ("jobs_lost", "max_runners_over_limit", "orphans", "secrets_leaked"))
    assert f"**{' / '.join(str(n) for n in lost)}**" in readme


@pytest.mark.parametrize(
    ("module", "subcommand"),
    [
        ("gha_scalesets.listener", None),
        ("gha_scalesets.listener", "check"),
        ("gha_scalesets.simulator", None),
        ("benchmarks", None),
        ("benchmarks.report", None),
        ("benchmarks.chaos", None),
    ],
)
def test_cli_help_is_plain_text(module: str, subcommand: str | None) -> None:
    text = checker.help_text(module, subcommand)
    assert text is not None and "Usage: python -m" in text
    assert checker.HELP_MARKUP.search(text) is None, text
