"""AWS's documented API rate limits for one account and Region, as token buckets.

The figures (burst = bucket maximum capacity, per second = refill rate) and their sources are
in docs/runtimes.md, "API limits". The runtimes pace their calls with them (an account with
raised limits sets ``api_rate_limits``); the benchmark's throttling proxy enforces them.
"""

from __future__ import annotations

from gha_scalesets.listener.runtimes._pacing import ApiLimit, Rate

# EC2, "Request throttling for the Amazon EC2 API": request buckets per API and resource
# buckets (one token per instance) for RunInstances and TerminateInstances.
EC2_RUN_INSTANCES = Rate(5, 2)
EC2_RUN_INSTANCES_INSTANCES = Rate(1000, 2)
EC2_TERMINATE_INSTANCES = Rate(100, 5)
EC2_TERMINATE_INSTANCES_INSTANCES = Rate(1000, 20)
# ECS, "Request throttling for the Amazon ECS API": RunTask and StopTask share the cluster
# resource modify bucket. Fargate also limits RunTask requests, and the tasks they start.
ECS_CLUSTER_RESOURCE_MODIFY = Rate(100, 40)
FARGATE_RUN_TASK = Rate(20, 20)
FARGATE_TASKS = Rate(100, 20)
ECS_TASKS_PER_RUN_TASK = 10  # RunTask's ``count`` maximum
# Parameter Store standard throughput: 40 transactions per second, shared by GetParameter(s)
# (the runners' reads) and PutParameter (the listener's writes).
PARAMETER_STORE_STANDARD = Rate(40, 40)


def ec2_limits() -> dict[str, ApiLimit]:
    """What the EC2 runtime paces."""
    return {
        "ec2:RunInstances": ApiLimit(EC2_RUN_INSTANCES, EC2_RUN_INSTANCES_INSTANCES),
        "ec2:TerminateInstances": ApiLimit(
            EC2_TERMINATE_INSTANCES, EC2_TERMINATE_INSTANCES_INSTANCES
        ),
        "ssm:PutParameter": ApiLimit(PARAMETER_STORE_STANDARD),
    }


def ecs_limits(*, fargate: bool) -> dict[str, ApiLimit]:
    """What the ECS runtime paces (Fargate: its own, lower RunTask limits)."""
    run_task = (
        ApiLimit(FARGATE_RUN_TASK, FARGATE_TASKS)
        if fargate
        else ApiLimit(ECS_CLUSTER_RESOURCE_MODIFY)
    )
    return {
        "ecs:RunTask": run_task,
        "ecs:StopTask": ApiLimit(ECS_CLUSTER_RESOURCE_MODIFY),
        "ssm:PutParameter": ApiLimit(PARAMETER_STORE_STANDARD),
    }
