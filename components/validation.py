"""The rules of :class:`ScaleSetListenerArgs`, checked before any resource is declared.

This is the only place a rule of the component lives: the project's program (stack config) runs
the same checks with messages naming its config keys (``key``). Every problem found is
reported at once, one ``<key>: <what is wrong and how to fix it>`` line each, so one
``pulumi preview`` shows all that needs fixing. Values not known while declaring (outputs of
other resources) are left to the resources that take them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pydantic import ValidationError

from gha_scalesets.components import formats
from gha_scalesets.components.args import (
    RUNTIMES,
    ListenerConfigError,
    ListenerScaleSet,
    ScaleSetListenerArgs,
)
from gha_scalesets.components.naming import TAG_KEY, is_safe_name
from gha_scalesets.components.network import aws_proxy_problem
from gha_scalesets.components.platforms import PLATFORMS, instance_type_platform
from gha_scalesets.config_errors import report
from gha_scalesets.contract.warm import warm_problems
from gha_scalesets.providers import GitHubAppArgs
from gha_scalesets.providers import props as p
from gha_scalesets.providers.inputs import (
    Checked,
    KeyName,
    check_config_url,
    check_credentials,
    check_network,
    same_name,
)
from gha_scalesets.providers.scale_set import app_props

# More standbys add registry reads and nothing else: one takes over, the rest keep waiting.
MAX_REPLICAS = 5

# The values CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
     3288, 3653}
)  # fmt: skip

# Child names append at most "-alert-rules" to the listener's name; Kubernetes names are 63 long.
K8S_NAME_LENGTH = 63 - len("-alert-rules")
# Far above any fleet; a typo (an extra zero or two) stops here.
MAX_RUNNERS = 10_000
# A CloudWatch alarm evaluates at most one day of one-minute periods.
MAX_JOB_WAIT_MINUTES = 1440
# GitHub's REST ceiling is 180 JIT configs a minute; far above it is a typo.
MAX_PER_MINUTE = 100_000


@dataclass
class Problems:
    """What is wrong, as (key, message) pairs; ``key`` renders an Args path for the reader."""

    key: KeyName = same_name
    found: list[tuple[str, str]] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        self.found.append((self.key(path), message))

    def lines(self) -> list[str]:
        return [f"{key}: {message}" for key, message in self.found]


def _plain_strings(values: Any) -> list[tuple[int, str]]:
    """The items of a list that are strings now (a whole list may be an output)."""
    if not isinstance(values, Sequence):
        return []
    return [(i, v) for i, v in enumerate(values) if isinstance(v, str)]


def _integer(out: Problems, path: str, value: Any, low: int, high: int, hint: str = "") -> bool:
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return True
    out.add(path, f"{value!r} must be an integer from {low} to {high}{hint}")
    return False


def _flag(out: Problems, path: str, value: Any) -> None:
    if not isinstance(value, bool):
        out.add(path, f"{value!r} must be true or false")


def _image(out: Problems, path: str, value: Any, what: str) -> None:
    if value is None or (isinstance(value, str) and not value.strip()):
        out.add(path, f"required: {what}")
    elif not isinstance(value, str) or not formats.is_image(value):
        out.add(path, f"{value!r} is not an image reference (registry/name:tag)")


# -- everywhere -------------------------------------------------------------------------------


def _listener(name: str, args: ScaleSetListenerArgs, out: Problems) -> None:
    if not isinstance(name, str) or not is_safe_name(name):
        out.add(
            "name",
            f"{name!r} must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or"
            " digit (it becomes part of AWS and Kubernetes names)",
        )
    elif args.runtime == "k8s" and not formats.is_dns_1035_label(name, K8S_NAME_LENGTH):
        out.add(
            "name",
            f"{name!r} must be a Kubernetes name on runtime 'k8s': lowercase letters, digits and"
            f" '-', starting with a letter, at most {K8S_NAME_LENGTH} characters",
        )
    if args.runtime is None:
        out.add("runtime", f"required: one of {', '.join(RUNTIMES)}")
    elif args.runtime not in RUNTIMES:
        out.add("runtime", f"{args.runtime!r} is not supported: use one of {', '.join(RUNTIMES)}")
    _image(out, "listener_image", args.listener_image, "the listener image (docs/components.md)")
    _integer(out, "metrics_port", args.metrics_port, 1, 65535, " (a TCP port)")
    _integer(out, "replicas", args.replicas, 1, MAX_REPLICAS, " (2 gives a hot standby)")
    thresholds = args.alarm_thresholds
    _integer(
        out, "alarm_thresholds.job_wait_minutes", thresholds.job_wait_minutes, 1,
        MAX_JOB_WAIT_MINUTES,
    )  # fmt: skip
    _integer(out, "alarm_thresholds.launch_failures", thresholds.launch_failures, 1, 1000)
    idle = thresholds.idle_runner_minutes_per_hour
    if idle is not None:
        _integer(out, "alarm_thresholds.idle_runner_minutes_per_hour", idle, 1, 60 * MAX_RUNNERS)
    rate = thresholds.api_error_rate_percent
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 100:
        out.add(
            "alarm_thresholds.api_error_rate_percent", f"{rate!r} must be above 0 and at most 100"
        )
    budget = thresholds.credential_budget_percent
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not 0 <= budget <= 100:
        out.add("alarm_thresholds.credential_budget_percent", f"{budget!r} must be from 0 to 100")
    _flag(out, "pacing.enabled", args.pacing.enabled)
    if args.pacing.jit_per_minute is not None:
        _integer(out, "pacing.jit_per_minute", args.pacing.jit_per_minute, 1, MAX_PER_MINUTE)


def _github(args: ScaleSetListenerArgs, out: Problems) -> None:
    """The config URL, the credential(s) and the CA: the ScaleSet resource's own rules."""
    shared = Checked(key=out.key)
    check_config_url(p.declared(args.github_config_url), shared)
    if args.github_credentials:
        _several_credentials(args, out)
    else:
        app = app_props(args.github_app) if args.github_app is not None else None
        check_credentials(p.declared(args.github_token), p.declared(app), shared)
    check_network(p.declared(args.proxy), args.ca_bundle, shared)
    for prop, reason in shared.failures:
        out.add(prop, reason)


def _several_credentials(args: ScaleSetListenerArgs, out: Problems) -> None:
    """``github_credentials`` instead of the one credential, each a usable token or App."""
    if args.github_token is not None or args.github_app is not None:
        out.add(
            "github_credentials",
            f"give either {out.key('github_credentials')} or {out.key('github_token')} /"
            f" {out.key('github_app')}, not both: list every credential in"
            f" {out.key('github_credentials')}",
        )
    for index, credential in enumerate(args.github_credentials):
        one = Checked()
        if isinstance(credential, GitHubAppArgs):
            check_credentials(None, p.declared(app_props(credential)), one)
        else:
            check_credentials(p.declared(credential), None, one)
        for _, reason in one.failures:
            out.add(f"github_credentials[{index}]", reason)


def _scale_sets(entries: Sequence[ListenerScaleSet], out: Problems) -> None:
    if not entries:
        out.add("scale_sets", "empty: give at least one scale set")
        return
    seen: dict[int, int] = {}
    names: dict[str, int] = {}
    for index, entry in enumerate(entries):
        path = f"scale_sets[{index}]"
        resource = getattr(entry.scale_set, "pulumi_resource_name", None)
        of = f" (scale set {resource!r})" if resource else ""
        low, high = entry.min_runners, entry.max_runners
        bounded = _integer(out, f"{path}.min_runners", low, 0, MAX_RUNNERS)
        if _integer(out, f"{path}.max_runners", high, 0, MAX_RUNNERS) and bounded and low > high:
            out.add(
                f"{path}.min_runners",
                f"{low} is above {out.key(f'{path}.max_runners')} ({high}){of}: lower one"
                " or raise the other",
            )
        _warm(out, path, entry)
        if (first := seen.setdefault(id(entry.scale_set), index)) != index:
            out.add(path, f"the same scale set as scale_sets[{first}]{of}: list it once")
            continue
        name = getattr(entry.scale_set, "declared_name", None)
        if isinstance(name, str) and (other := names.setdefault(name, index)) != index:
            out.add(
                f"{path}.name",
                f"{name!r} is also the name of {out.key(f'scale_sets[{other}]')}: scale set names"
                " must be unique within a listener",
            )


def _platform(args: ScaleSetListenerArgs, out: Problems) -> None:
    """One architecture for the images and the hosts: EC2 instance types must match it (ECS
    task definitions take it as it is)."""
    if args.platform not in PLATFORMS:
        out.add(
            "platform", f"{args.platform!r} is not supported: use one of {', '.join(PLATFORMS)}"
        )
        return
    if args.runtime != "ec2":
        return
    arm = args.platform == "linux/arm64"
    hint = "Graviton types such as m7g.large" if arm else "x86 types such as m7i.large"
    ec2 = args.ec2
    named = [
        (f"ec2.runner_instance_types[{i}]", t) for i, t in _plain_strings(ec2.runner_instance_types)
    ]
    named.append(("ec2.listener_instance_type", ec2.listener_instance_type))
    for path, kind in named:
        if not isinstance(kind, str) or not formats.is_instance_type(kind):
            continue  # reported by _ec2
        if (platform := instance_type_platform(kind)) != args.platform:
            out.add(
                path,
                f"{kind} is a {platform} type but {out.key('platform')} is {args.platform}: use"
                f" {hint}, or set {out.key('platform')} to match (and build the images for it)",
            )


def _warm(out: Problems, path: str, entry: ListenerScaleSet) -> None:
    """The warm-capacity policy, by the listener's own rules (contract/warm.py)."""
    try:
        policy = entry.warm_policy()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(map(str, error["loc"]))
            out.add(f"{path}.warm.{where}", error["msg"].removeprefix("Value error, "))
        return
    if isinstance(entry.max_runners, int) and not isinstance(entry.max_runners, bool):
        for key, message in warm_problems(policy, entry.max_runners):
            out.add(f"{path}.warm.{key}", message)


# -- AWS --------------------------------------------------------------------------------------


def _aws(args: ScaleSetListenerArgs, out: Problems) -> None:
    runtime = args.runtime
    if args.vpc_id is None:
        out.add("vpc_id", f"required on runtime {runtime!r}: the VPC of the subnets")
    elif isinstance(args.vpc_id, str) and not formats.is_vpc_id(args.vpc_id):
        out.add("vpc_id", f"{args.vpc_id!r} is not a VPC id (vpc-0123456789abcdef0)")
    if isinstance(args.subnet_ids, Sequence) and not args.subnet_ids:
        out.add(
            "subnet_ids",
            f"required on runtime {runtime!r}: private subnets with a route to GitHub and AWS"
            " APIs (NAT gateway or VPC endpoints)",
        )
    for i, subnet in _plain_strings(args.subnet_ids):
        if not formats.is_subnet_id(subnet):
            out.add(f"subnet_ids[{i}]", f"{subnet!r} is not a subnet id (subnet-0123456789abcdef0)")
    for path in ("kms_key_arn", "log_kms_key_arn"):
        value = getattr(args, path)
        if isinstance(value, str) and not formats.is_kms_key_arn(value):
            out.add(
                path, f"{value!r} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"
            )
    for i, action in _plain_strings(args.alarm_actions):
        if formats.arn_service(action) is None:
            out.add(
                f"alarm_actions[{i}]",
                f"{action!r} is not an ARN (an SNS topic: arn:aws:sns:<region>:<account>:<name>)",
            )
    if args.log_retention_days not in LOG_RETENTION_DAYS:
        out.add(
            "log_retention_days",
            f"{args.log_retention_days!r} is not a retention CloudWatch Logs accepts"
            " (e.g. 7, 14, 30, 90, 365)",
        )
    for tag, value in dict(args.tags or {}).items():
        if not isinstance(tag, str) or not 1 <= len(tag) <= 128 or tag.startswith("aws:"):
            out.add("tags", f"tag key {tag!r} must be 1-128 characters, not starting with 'aws:'")
        elif tag == TAG_KEY:
            out.add("tags", f"tag key {tag!r} is the component's own: use another key")
        elif not isinstance(value, str) or len(value) > 256:
            out.add("tags", f"the value of tag {tag!r} must be a string of at most 256 characters")
    reported = out.key("proxy") in (key for key, _ in out.found)  # not a URL at all
    if isinstance(args.proxy, str) and not reported and (problem := aws_proxy_problem(args.proxy)):
        out.add("proxy", problem)  # an output is checked once it resolves


def _ec2(args: ScaleSetListenerArgs, out: Problems) -> None:
    ec2 = args.ec2
    if not ec2.runner_ami_id:
        out.add(
            "ec2.runner_ami_id",
            "required on runtime 'ec2': an AMI with curl, the AWS CLI and the actions runner in"
            " /opt/actions-runner (see docs/components.md, 'What it creates')",
        )
    for path in ("ec2.runner_ami_id", "ec2.listener_ami_id"):
        value = getattr(ec2, path.split(".")[1])
        if value and (not isinstance(value, str) or not formats.is_ami(value)):
            out.add(path, f"{value!r} is not an AMI id (ami-0123456789abcdef0 or resolve:ssm:...)")
    types = list(ec2.runner_instance_types or ())
    if not types:
        out.add("ec2.runner_instance_types", "give at least one instance type, e.g. m7i.large")
    for i, kind in enumerate(types):
        if not isinstance(kind, str) or not formats.is_instance_type(kind):
            out.add(
                f"ec2.runner_instance_types[{i}]",
                f"{kind!r} is not an EC2 instance type (e.g. m7i.large)",
            )
        elif kind in types[:i]:
            out.add(f"ec2.runner_instance_types[{i}]", f"{kind!r} is listed twice")
    kind = ec2.listener_instance_type
    if not isinstance(kind, str) or not formats.is_instance_type(kind):
        out.add(
            "ec2.listener_instance_type", f"{kind!r} is not an EC2 instance type (e.g. t3.small)"
        )
    low, high = formats.VOLUME_GB
    _integer(out, "ec2.runner_volume_gb", ec2.runner_volume_gb, low, high, " (GiB of gp3)")
    if not isinstance(ec2.root_device_name, str) or not formats.is_device_name(
        ec2.root_device_name
    ):
        out.add(
            "ec2.root_device_name",
            f"{ec2.root_device_name!r} is not a device name (/dev/xvda, or /dev/sda1 on Ubuntu)",
        )
    _flag(out, "ec2.spot", ec2.spot)


def _ecs(args: ScaleSetListenerArgs, out: Problems) -> None:
    ecs = args.ecs
    _image(
        out,
        "ecs.runner_image",
        ecs.runner_image,
        "an image with bash, curl, the AWS CLI and the runner at /home/runner/run.sh (see"
        " docs/components.md, 'What it creates')",
    )
    if isinstance(ecs.cluster_arn, str) and not formats.is_ecs_cluster_arn(ecs.cluster_arn):
        out.add(
            "ecs.cluster_arn",
            f"{ecs.cluster_arn!r} is not an ECS cluster ARN"
            " (arn:aws:ecs:<region>:<account>:cluster/<name>)",
        )
    for task in ("runner", "listener"):
        cpu, memory = getattr(ecs, f"{task}_cpu"), getattr(ecs, f"{task}_memory")
        problem = formats.fargate_memory_problem(cpu, memory)
        if cpu not in formats.FARGATE_SIZES:
            out.add(f"ecs.{task}_cpu", problem or "")
            if not formats.is_fargate_memory(memory):
                out.add(f"ecs.{task}_memory", f"{memory!r} MiB is no Fargate size (512 to 122880)")
        elif problem:
            out.add(f"ecs.{task}_memory", problem)


# -- Kubernetes -------------------------------------------------------------------------------


def _resources(out: Problems, path: str, resources: Any) -> None:
    if not isinstance(resources, Mapping):
        out.add(path, "must be an object {requests: {...}, limits: {...}}")
        return
    for kind, amounts in resources.items():
        if kind not in ("requests", "limits") or not isinstance(amounts, Mapping):
            out.add(f"{path}.{kind}", "only requests and limits, each {cpu: '500m', ...}")
            continue
        for resource, amount in amounts.items():
            if not isinstance(resource, str) or not formats.is_qualified_name(resource):
                out.add(f"{path}.{kind}", f"{resource!r} is not a resource name (cpu, memory)")
            elif not formats.is_quantity(amount):
                out.add(
                    f"{path}.{kind}.{resource}",
                    f"{amount!r} is not a Kubernetes quantity (e.g. '500m', '2', '1Gi')",
                )


def _tolerations(out: Problems, tolerations: Any) -> None:
    for i, toleration in enumerate(tolerations or ()):
        path = f"k8s.tolerations[{i}]"
        if not isinstance(toleration, Mapping):
            out.add(path, "must be an object {key, operator, value, effect}")
            continue
        if unknown := sorted(set(toleration) - formats.TOLERATION_KEYS):
            out.add(path, f"unknown fields {unknown}: use {sorted(formats.TOLERATION_KEYS)}")
        operator = toleration.get("operator", "Equal")
        if operator not in formats.TOLERATION_OPERATORS:
            out.add(f"{path}.operator", f"{operator!r} must be Equal or Exists")
        elif operator == "Exists" and toleration.get("value"):
            out.add(f"{path}.value", "must be empty with operator Exists")
        effect = toleration.get("effect")
        if effect not in (None, "", *formats.TOLERATION_EFFECTS):
            out.add(f"{path}.effect", f"{effect!r} must be one of {formats.TOLERATION_EFFECTS}")


def _k8s(args: ScaleSetListenerArgs, has_k8s_provider: bool, out: Problems) -> None:
    k8s = args.k8s
    if not k8s.namespace:
        out.add("k8s.namespace", "required on runtime 'k8s': the namespace of listener and runners")
    elif not isinstance(k8s.namespace, str) or not formats.is_dns_label(k8s.namespace):
        out.add(
            "k8s.namespace",
            f"{k8s.namespace!r} is not a Kubernetes namespace name: at most 63 lowercase letters,"
            " digits and '-', starting and ending with a letter or digit",
        )
    if not has_k8s_provider:
        out.add(
            "k8s.provider",
            "runtime 'k8s' needs a Kubernetes provider: K8sOptions(provider=...) or"
            " opts=ResourceOptions(providers={'kubernetes': ...})",
        )
    _image(out, "k8s.runner_image", k8s.runner_image, "the runner image")
    _flag(out, "k8s.create_namespace", k8s.create_namespace)
    _flag(out, "k8s.runner_service_account_token", k8s.runner_service_account_token)
    _resources(out, "k8s.runner_resources", k8s.runner_resources)
    _resources(out, "k8s.listener_resources", k8s.listener_resources)
    for label, value in dict(k8s.node_selector or {}).items():
        if not isinstance(label, str) or not formats.is_qualified_name(label):
            out.add("k8s.node_selector", f"{label!r} is not a label key (e.g. kubernetes.io/arch)")
        elif not isinstance(value, str) or not formats.is_label_value(value):
            out.add(f"k8s.node_selector.{label}", f"{value!r} is not a label value")
    _tolerations(out, k8s.tolerations)


def problems(
    name: str,
    args: ScaleSetListenerArgs,
    *,
    has_k8s_provider: bool,
    key: KeyName = same_name,
) -> Problems:
    """Every problem of ``args`` for a listener called ``name``; ``key`` names Args paths
    (``ec2.runner_ami_id``, ``scale_sets[1].min_runners``, ``name`` for the listener's name)."""
    out = Problems(key=key)
    _listener(name, args, out)
    _platform(args, out)
    _github(args, out)
    _scale_sets(args.bounded_scale_sets(), out)
    if args.runtime == "k8s":
        _k8s(args, has_k8s_provider, out)
    elif args.runtime in RUNTIMES:
        _aws(args, out)
        (_ec2 if args.runtime == "ec2" else _ecs)(args, out)
    return out


def validate(name: str, args: ScaleSetListenerArgs, *, has_k8s_provider: bool) -> None:
    """Raise :class:`ListenerConfigError` listing every problem of ``args``, if any."""
    if found := problems(name, args, has_k8s_provider=has_k8s_provider).lines():
        raise ListenerConfigError(report(f"invalid ScaleSetListener {name!r}", found))


def check_unique_names(names: Sequence[str]) -> list[str]:
    """``names`` unchanged, or :class:`ListenerConfigError` naming the duplicates (for names
    known only once the scale sets exist)."""
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise ListenerConfigError(
            f"scale set names must be unique within a listener: {', '.join(duplicates)}"
            " is listed more than once"
        )
    return list(names)


def has_provider(opts: pulumi.ResourceOptions | None, package: str) -> bool:
    """Whether ``opts`` carries an explicit provider for ``package``."""
    if opts is None:
        return False
    if isinstance(opts.provider, pulumi.ProviderResource) and opts.provider.package == package:
        return True
    providers = opts.providers
    if isinstance(providers, Mapping):
        return package in providers
    return any(provider.package == package for provider in providers or ())
