"""A user's own Pulumi project, outside this repository, through the ``pulumi`` command.

The project has what real projects have: its own ``components/`` package and a ``providers.py``
(names our package also uses inside its namespace), a ``requirements.txt`` naming the package,
and a fresh virtualenv holding the built wheel with the ``pulumi`` extra. Then the commands of
docs/own-project.md, in order, against the simulator.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gha_scalesets.scaleset import SyncClient
from gha_scalesets.simulator.testing import SimulatorServer
from tests.engine.cli import ProjectCli
from tests.fixtures.packaging import UserVenv
from tests.fixtures.pulumi import pickled_globals
from tests.fixtures.sim import SIM_PAT, Requests
from tests.support.provider_host import PROVIDER_REFERENCE

USER_FILES = {
    "components/__init__.py": (
        '"""The team\'s own components."""\n\nfrom components.naming import team_labels\n'
    ),
    "components/naming.py": (
        'def team_labels(team: str) -> list[str]:\n    return [f"team-{team}", "linux-x64"]\n'
    ),
    "providers.py": '"""The team\'s own provider settings."""\n\nREGION = "eu-west-1"\n',
    "__main__.py": '''"""Runner scale sets of the ACME platform team."""

import pulumi

import providers
from components import team_labels
from gha_scalesets import ScaleSet, ScaleSetArgs

cfg = pulumi.Config()
linux = ScaleSet(
    "linux",
    ScaleSetArgs(
        github_config_url=cfg.require("githubConfigUrl"),
        name="acme-linux",
        labels=team_labels(cfg.get("team") or "platform"),
        github_token=cfg.require_secret("githubToken"),
    ),
)
pulumi.export("scaleSetId", linux.scale_set_id)
pulumi.export("region", providers.REGION)
''',
    "requirements.txt": "gha-scalesets[pulumi]>=0.1,<0.2\n",
}


def user_project(root: Path, venv: UserVenv) -> Path:
    """The project directory, its Pulumi.yaml naming ``venv`` as its virtualenv."""
    project = root / "acme-runners"
    for name, text in USER_FILES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    (project / "Pulumi.yaml").write_text(
        "name: acme-runners\n"
        "runtime:\n  name: python\n  options:\n    toolchain: pip\n"
        f"    virtualenv: {venv.path}\n"
    )
    return project


def test_a_user_project_with_its_own_components_and_providers_through_the_cli(
    user_venv: Callable[[str | None], UserVenv],
    sim: SimulatorServer,
    github: SyncClient,
    requests: Requests,
    tmp_path: Path,
) -> None:
    project = user_project(tmp_path, user_venv("pulumi"))
    pulumi = ProjectCli(project, tmp_path / "pulumi", user_venv("pulumi").bin)
    pulumi.init("dev", {"githubConfigUrl": sim.config_url("acme")}, {"githubToken": SIM_PAT})
    requests.delta()

    preview = pulumi.json("preview")
    assert preview.changed() == {"linux": "create"}
    assert sum(requests.delta().values()) == 0

    created = pulumi.json("up")
    assert created.changed() == {"linux": "create"}
    assert created.outputs["region"] == "eu-west-1"
    scale_set = github.get_scale_set(int(created.outputs["scaleSetId"]))
    assert sorted(label.name for label in scale_set.labels) >= ["linux-x64", "team-platform"]
    state = pulumi.state()
    stored = [
        r["inputs"]["__provider"]
        for r in state["deployment"]["resources"]
        if r["type"].endswith("ScaleSet")
    ]
    assert [pickled_globals(p) for p in stored] == [{PROVIDER_REFERENCE}]
    assert SIM_PAT not in str(state)
    requests.delta()

    pulumi("config", "set", "team", "ml")
    assert pulumi.preview_diff() == {"labels"}
    assert sum(requests.delta().values()) == 0
    assert pulumi.json("up").changed() == {"linux": "update"}
    relabelled = github.get_scale_set(scale_set.id)
    assert "team-ml" in {label.name for label in relabelled.labels}

    github.update_scale_set(scale_set.id, labels=["linux-x64", "hand-edited"])
    assert pulumi.json("refresh").summary.get("update") == 1
    assert pulumi.preview_diff() == {"labels"}  # the drift, named
    destroyed = pulumi.json("destroy")
    assert destroyed.changed() == {"linux": "delete"}
    assert github.get_scale_set_by_name(scale_set.runner_group_id, "acme-linux") is None
