"""A bad stack configuration stops the real ``pulumi preview`` of the repository's program.

The repository's own project (``Pulumi.yaml``, its virtualenv) with a stack made from
``Pulumi.example-ecs.yaml`` and changed with ``pulumi config set`` as a user would: a mistyped
key, a Fargate size that does not exist and a proxy URL set without ``--secret``. The preview
fails before any resource (or provider plugin) is needed, naming each key; the token, set with
``--secret``, is accepted as a secret.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.cli import root_example_stack
from tests.fixtures.packaging import CommandFailed
from tests.fixtures.sim import SIM_PAT


def test_a_typo_and_a_bad_fargate_size_fail_the_real_preview_naming_the_keys(
    tmp_path: Path,
) -> None:
    with root_example_stack("ecs", tmp_path / "pulumi") as (pulumi, stack):
        pulumi.init(
            stack,
            {
                "alarmTopicARN": "arn:aws:sns:eu-west-1:123456789012:ci-alerts",
                "proxy": "http://proxy.corp:3128",
            },
            {"githubToken": SIM_PAT},
        )
        pulumi("config", "set", "--path", "ecs.runnerCpu", "3000")

        with pytest.raises(CommandFailed) as failed:
            pulumi("preview")

    output = str(failed.value)
    assert "invalid stack configuration; fix each key below with `pulumi config set" in output
    assert "  - alarmTopicARN: unknown key; did you mean alarmTopicArn?" in output
    assert (
        "  - ecs.runnerCpu: 3000 CPU units is no Fargate size: use one of 256, 512, 1024, 2048,"
        " 4096, 8192, 16384" in output
    )
    assert (
        "  - proxy: stored in plain text: set it with `pulumi config set --secret proxy`" in output
    )
    assert "githubToken" not in output  # set with --secret: the CLI says so to the program
    assert "Traceback" not in output
    assert SIM_PAT not in output
