"""Checks of :class:`ScaleSetListenerArgs` that run before any resource is declared.

Every problem found is reported at once, so one ``pulumi preview`` shows all that needs fixing.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from gha_scalesets.components.args import (
    RUNTIMES,
    ListenerConfigError,
    ListenerScaleSet,
    ScaleSetListenerArgs,
)
from gha_scalesets.components.naming import is_safe_name
from gha_scalesets.components.network import aws_proxy_problem

# More standbys add registry reads and nothing else: one takes over, the rest keep waiting.
MAX_REPLICAS = 5

# The values CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
     3288, 3653}
)  # fmt: skip


def _label(entry: ListenerScaleSet, index: int) -> str:
    resource_name = getattr(entry.scale_set, "pulumi_resource_name", None)
    return f"scale_sets[{index}]" + (f" ({resource_name!r})" if resource_name else "")


def _scale_set_problems(entries: Sequence[ListenerScaleSet]) -> list[str]:
    if not entries:
        return ["scale_sets is empty: give at least one providers.ScaleSet"]
    problems = []
    seen: dict[int, int] = {}
    for index, entry in enumerate(entries):
        label = _label(entry, index)
        if not isinstance(entry.min_runners, int) or not isinstance(entry.max_runners, int):
            problems.append(f"{label}: min_runners and max_runners must be integers")
        elif entry.min_runners < 0:
            problems.append(f"{label}: min_runners ({entry.min_runners}) must not be negative")
        elif entry.min_runners > entry.max_runners:
            problems.append(
                f"{label}: min_runners ({entry.min_runners}) is above max_runners"
                f" ({entry.max_runners})"
            )
        if (first := seen.setdefault(id(entry.scale_set), index)) != index:
            problems.append(f"{label} is the same scale set as scale_sets[{first}]")
    return problems


def _runtime_problems(args: ScaleSetListenerArgs, has_k8s_provider: bool) -> list[str]:
    if args.runtime not in RUNTIMES:
        return [f"runtime {args.runtime!r} is not supported: use one of {', '.join(RUNTIMES)}"]
    problems = []
    if args.runtime == "k8s":
        if not args.k8s.namespace:
            problems.append("runtime 'k8s' needs k8s=K8sOptions(namespace=...)")
        if not has_k8s_provider:
            problems.append(
                "runtime 'k8s' needs a Kubernetes provider: K8sOptions(provider=...) or"
                " opts=ResourceOptions(providers={'kubernetes': ...})"
            )
        return problems
    if args.vpc_id is None:
        problems.append(f"runtime {args.runtime!r} needs vpc_id (the VPC of subnet_ids)")
    if not args.subnet_ids:
        problems.append(
            f"runtime {args.runtime!r} needs subnet_ids: private subnets with a route to"
            " GitHub and AWS APIs (NAT gateway or VPC endpoints)"
        )
    if args.log_retention_days not in LOG_RETENTION_DAYS:
        problems.append(
            f"log_retention_days {args.log_retention_days} is not one CloudWatch Logs accepts"
            f" (e.g. 7, 14, 30, 90, 365)"
        )
    if isinstance(args.proxy, str) and (problem := aws_proxy_problem(args.proxy)):
        problems.append(problem)  # an Output is checked once it resolves
    if args.runtime == "ec2":
        if not args.ec2.runner_instance_types:
            problems.append("runtime 'ec2' needs at least one of ec2.runner_instance_types")
        if not args.ec2.runner_ami_id:
            problems.append(
                "runtime 'ec2' needs ec2.runner_ami_id: an AMI with curl, the AWS CLI and the"
                " actions runner in /opt/actions-runner (see docs/components.md, 'What it creates')"
            )
    if args.runtime == "ecs" and not args.ecs.runner_image:
        problems.append(
            "runtime 'ecs' needs ecs.runner_image: an image with bash, the AWS CLI and the"
            " runner at /home/runner/run.sh (see docs/components.md, 'What it creates')"
        )
    return problems


def validate(name: str, args: ScaleSetListenerArgs, *, has_k8s_provider: bool) -> None:
    """Raise :class:`ListenerConfigError` listing every problem of ``args``, if any."""
    problems = _runtime_problems(args, has_k8s_provider)
    if not is_safe_name(name):
        problems.append(
            f"the listener's name {name!r} must be 1-63 letters, digits, '.', '_' or '-'"
            " (it becomes part of AWS and Kubernetes names)"
        )
    given = [
        args.github_token is not None,
        args.github_app is not None,
        bool(args.github_credentials),
    ]
    if sum(given) != 1:
        problems.append(
            "give exactly one of github_token or github_app (or several as github_credentials)"
        )
    if any(c is None for c in args.github_credentials):
        problems.append("github_credentials holds a None: give tokens and GitHubAppArgs only")
    jit = args.pacing.jit_per_minute
    if jit is not None and (not isinstance(jit, int) or jit < 1):
        problems.append(f"pacing.jit_per_minute {jit!r} must be a positive integer or None")
    budget = args.alarm_thresholds.credential_budget_percent
    if not 0 <= budget <= 100:
        problems.append(f"alarm_thresholds.credential_budget_percent {budget} is not a percentage")
    if not args.listener_image or not args.listener_image.strip():
        problems.append(
            "listener_image is required (see docs/components.md, 'Build and push the"
            " listener image')"
        )
    if not 0 < args.metrics_port < 65536:
        problems.append(f"metrics_port {args.metrics_port} is not a TCP port")
    if not isinstance(args.replicas, int) or not 1 <= args.replicas <= MAX_REPLICAS:
        problems.append(
            f"replicas {args.replicas!r} must be an integer from 1 to {MAX_REPLICAS}"
            " (2 gives a hot standby)"
        )
    problems += _scale_set_problems(args.bounded_scale_sets())
    if problems:
        raise ListenerConfigError(
            f"invalid ScaleSetListener {name!r}:\n" + "\n".join(f"  - {p}" for p in problems)
        )


def check_unique_names(names: Sequence[str]) -> list[str]:
    """``names`` unchanged, or :class:`ListenerConfigError` naming the duplicates."""
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
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
    if isinstance(providers, dict):
        return package in providers
    return any(p.package == package for p in providers or ())
