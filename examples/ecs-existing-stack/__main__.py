"""The listener composed into a stack that already has its VPC, subnets and ECS cluster.

    pulumi config set aws:region eu-west-1
    pulumi config set githubConfigUrl https://github.com/acme
    pulumi config set --secret githubToken ghp_...
    pulumi up

The first part stands for what your stack already declares; the second is what you add. See
docs/components.md ("Use in an existing stack"); ``tests/examples/`` runs this file under mocks.
"""

import pulumi
import pulumi_aws as aws

from gha_scalesets import (
    EcsOptions,
    ListenerScaleSet,
    ScaleSet,
    ScaleSetArgs,
    ScaleSetListener,
    ScaleSetListenerArgs,
)

# --- what the existing stack already has: a VPC, private subnets, a cluster, an alert topic
vpc = aws.ec2.Vpc("main", cidr_block="10.0.0.0/16")
private_subnet_ids = [
    aws.ec2.Subnet(
        f"private-{zone}", vpc_id=vpc.id, cidr_block=cidr, availability_zone=f"eu-west-1{zone}"
    ).id
    for zone, cidr in (("a", "10.0.1.0/24"), ("b", "10.0.2.0/24"))
]
cluster = aws.ecs.Cluster("apps")
topic = aws.sns.Topic("ci-alerts")

# --- what you add: scale sets and the listener that serves them
cfg = pulumi.Config()
token = cfg.require_secret("githubToken")
org = cfg.require("githubConfigUrl")  # org, owner/repo, or enterprises/<slug>

linux = ScaleSet("linux", ScaleSetArgs(github_config_url=org, name="linux-x64", github_token=token))
gpu = ScaleSet(
    "gpu", ScaleSetArgs(github_config_url=org, name="gpu", labels=["gpu"], github_token=token)
)

listener = ScaleSetListener(
    "ci",
    ScaleSetListenerArgs(
        runtime="ecs",
        github_config_url=org,
        github_token=token,  # or github_app=GitHubAppArgs(client_id, installation_id, private_key)
        scale_sets=[
            ListenerScaleSet(linux, max_runners=30),
            ListenerScaleSet(gpu, min_runners=1, max_runners=4),
        ],
        vpc_id=vpc.id,
        subnet_ids=private_subnet_ids,
        listener_image="ghcr.io/acme/gha-scalesets-listener:0.1.0",
        ecs=EcsOptions(
            runner_image="ghcr.io/acme/gha-scalesets-runner:0.1.0", cluster_arn=cluster.arn
        ),
        alarm_actions=[topic.arn],
    ),
)
pulumi.export("listener", listener.listener_id)
pulumi.export("alarms", listener.alarm_arns)
