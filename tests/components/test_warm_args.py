"""ListenerScaleSet.warm: validated by the listener's own rules (all problems at once) and
handed to the listener in LISTENER_SCALE_SETS in a form its settings accept."""

from __future__ import annotations

from dataclasses import dataclass

from gha_scalesets.components.args import ListenerScaleSet
from gha_scalesets.components.settings import _entry
from gha_scalesets.components.validation import Problems, _scale_sets
from gha_scalesets.contract.warm import WarmPolicy, WarmSchedule
from gha_scalesets.listener.config import ScaleSetConfig
from tests.support.programs import example_config, refused, run_program


@dataclass
class FakeScaleSet:
    scale_set_id: object = None
    name: object = None


def test_warm_problems_are_reported_with_the_scale_set_and_key() -> None:
    entries = [
        ListenerScaleSet(
            FakeScaleSet(),
            max_runners=3,
            warm={"schedules": [{"cron": "* 99 * * *", "min_idle": 1}]},
        ),
        ListenerScaleSet(FakeScaleSet(), max_runners=3, warm={"min_idle": 5}),
        ListenerScaleSet(
            FakeScaleSet(),
            max_runners=3,
            warm={"adaptive": {"max_idle_runner_minutes_per_hour": 0}},
        ),
    ]
    out = Problems()
    _scale_sets(entries, out)
    assert out.lines() == [
        "scale_sets[0].warm.schedules.0.cron: cron hour 99 is out of range 0-23",
        "scale_sets[1].warm.min_idle: 5 is above max_runners (3): no more runners can be warm",
        "scale_sets[2].warm.adaptive.max_idle_runner_minutes_per_hour:"
        " Input should be greater than 0",
    ]


def test_the_listener_gets_the_policy_it_was_given() -> None:
    policy = WarmPolicy(
        min_idle=1,
        schedules=(WarmSchedule(cron="* 8-18 * * mon-fri", min_idle=6, time_zone="Europe/Berlin"),),
        adaptive={"max_idle_runner_minutes_per_hour": 240},
    )
    entry = _entry(ListenerScaleSet(FakeScaleSet(), max_runners=20, warm=policy), 42, "linux")
    assert entry["warm"] == {
        "min_idle": 1,
        "schedules": [{"cron": "* 8-18 * * mon-fri", "min_idle": 6, "time_zone": "Europe/Berlin"}],
        "adaptive": {"max_idle_runner_minutes_per_hour": 240.0},
    }
    assert ScaleSetConfig.model_validate(entry).warm == policy
    bare = _entry(ListenerScaleSet(FakeScaleSet(), max_runners=20), 42, "linux")
    assert "warm" not in bare  # nothing configured: the listener's defaults


def test_stack_config_warm_reaches_the_listener_and_its_problems_name_the_key(
    settings_from_env,
) -> None:
    warm = {"min_idle": 1, "adaptive": {"max_idle_runner_minutes_per_hour": 120}}
    recorder, _ = run_program(
        "dev",
        example_config(
            "k8s",
            k8s={"namespace": "ci-runners"},
            scaleSets=[{"name": "linux", "maxRunners": 8, "warm": warm}],
            alarmThresholds={"idleRunnerMinutesPerHour": 300},
        ),
    )
    [container] = recorder.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"][
        "containers"
    ]
    settings = settings_from_env({e["name"]: e["value"] for e in container["env"] if "value" in e})
    assert settings.scale_sets[0].warm == WarmPolicy.model_validate(warm)
    rules = recorder.one("kubernetes:core/v1:ConfigMap").inputs["data"]
    assert "* 60 > 300" in next(iter(rules.values()))

    lines = refused(
        "ecs",
        scaleSets=[
            {"name": "linux", "maxRunners": 3, "warm": {"min_idle": 5}},
            {"name": "gpu", "warm": {"schedules": [{"cron": "* 25 * * *", "min_idle": 1}]}},
        ],
    )
    assert lines == [
        "scaleSets[0].warm.min_idle: 5 is above max_runners (3): no more runners can be warm",
        "scaleSets[1].warm.schedules.0.cron: cron hour 25 is out of range 0-23",
    ]
