"""The Pulumi program of this project: scale sets and one listener, all from stack config."""

from __future__ import annotations

import pulumi
from pydantic.alias_generators import to_camel

from gha_scalesets.components.args import (
    Ec2Options,
    EcsOptions,
    K8sOptions,
    ListenerScaleSet,
    ScaleSetListenerArgs,
)
from gha_scalesets.components.listener import ScaleSetListener
from gha_scalesets.components.stack_config import StackConfig, load_stack_config
from gha_scalesets.providers import GitHubAppArgs, ScaleSet, ScaleSetArgs


def _credentials(
    config: pulumi.Config, stack: StackConfig
) -> tuple[pulumi.Output[str] | None, GitHubAppArgs | None]:
    if stack.github_app is None:
        return config.require_secret("githubToken"), None
    app = GitHubAppArgs(
        client_id=stack.github_app.client_id,
        installation_id=stack.github_app.installation_id,
        private_key=config.require_secret("githubAppPrivateKey"),
    )
    return None, app


def _listener_args(
    config: pulumi.Config,
    stack: StackConfig,
    credentials: tuple[pulumi.Output[str] | None, GitHubAppArgs | None],
    scale_sets: list[ListenerScaleSet],
) -> ScaleSetListenerArgs:
    token, app = credentials
    k8s_options = K8sOptions()
    if stack.k8s is not None:
        import pulumi_kubernetes as k8s  # only Kubernetes stacks have it (gha-scalesets[k8s])

        k8s_options = K8sOptions(
            namespace=stack.k8s.namespace,
            create_namespace=stack.k8s.create_namespace,
            runner_image=stack.k8s.runner_image,
            # No kubeconfig in config: the provider uses the ambient one (KUBECONFIG, ~/.kube).
            provider=k8s.Provider(
                "kubernetes",
                kubeconfig=config.get_secret("kubeconfig"),
                context=stack.k8s.context,
            ),
        )
    return ScaleSetListenerArgs(
        runtime=stack.runtime,
        github_config_url=stack.github_config_url,
        github_token=token,
        github_app=app,
        scale_sets=scale_sets,
        listener_image=stack.listener_image,
        vpc_id=stack.vpc_id,
        subnet_ids=stack.subnet_ids,
        kms_key_arn=stack.kms_key_arn,
        alarm_actions=[stack.alarm_topic_arn] if stack.alarm_topic_arn else [],
        log_retention_days=stack.log_retention_days,
        platform=stack.platform,
        proxy=config.get_secret("proxy"),
        no_proxy=stack.no_proxy,
        ca_bundle=stack.ca_bundle,
        ec2=Ec2Options(**stack.ec2.model_dump()),
        ecs=EcsOptions(**stack.ecs.model_dump()),
        k8s=k8s_options,
    )


def main(config: pulumi.Config | None = None) -> ScaleSetListener:
    """Declare every scale set of ``scaleSets`` and the listener serving them; export their
    ids and the listener's outputs (docs/components.md, "Outputs")."""
    config = config or pulumi.Config()
    stack = load_stack_config(config)
    credentials = _credentials(config, stack)
    token, app = credentials
    scale_sets = [
        ListenerScaleSet(
            scale_set=ScaleSet(
                f"scaleset-{s.name}",
                ScaleSetArgs(
                    github_config_url=stack.github_config_url,
                    name=s.name,
                    runner_group=s.runner_group,
                    labels=s.labels or None,
                    github_token=token,
                    github_app=app,
                    # The provider runs where `pulumi up` runs: it takes HTTPS_PROXY from there.
                    ca_bundle=stack.ca_bundle,
                ),
            ),
            min_runners=s.min_runners,
            max_runners=s.max_runners,
        )
        for s in stack.scale_sets
    ]
    listener = ScaleSetListener(
        stack.listener_name, _listener_args(config, stack, credentials, scale_sets)
    )
    pulumi.export(
        "scaleSetIds",
        {
            c.name: s.scale_set.scale_set_id
            for c, s in zip(stack.scale_sets, scale_sets, strict=True)
        },
    )
    # Only what the runtime has: no empty alarmArns or null tableName on Kubernetes.
    for attribute, value in listener.runtime_outputs.items():
        pulumi.export(to_camel(attribute), value)
    return listener
