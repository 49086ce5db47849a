"""The Pulumi program of this project: scale sets and one listener, all from stack config."""

from __future__ import annotations

import dataclasses

import pulumi
from pydantic.alias_generators import to_camel

from gha_scalesets.components.args import K8sOptions, ListenerScaleSet
from gha_scalesets.components.listener import ScaleSetListener
from gha_scalesets.components.stack_config import StackConfig, load_stack_config
from gha_scalesets.providers import ScaleSet


def _k8s(stack: StackConfig) -> K8sOptions:
    if stack.args.runtime != "k8s":
        return stack.args.k8s
    import pulumi_kubernetes as k8s  # only Kubernetes stacks have it (gha-scalesets[k8s])

    # No kubeconfig in config: the provider uses the ambient one (KUBECONFIG, ~/.kube).
    provider = k8s.Provider("kubernetes", kubeconfig=stack.kubeconfig, context=stack.k8s_context)
    return dataclasses.replace(stack.args.k8s, provider=provider)


def main(config: pulumi.Config | None = None) -> ScaleSetListener:
    """Declare every scale set of ``scaleSets`` and the listener serving them; export their
    ids and the listener's outputs (docs/components.md, "Outputs")."""
    stack = load_stack_config(config or pulumi.Config())
    scale_sets = {
        entry.inputs["name"]: ListenerScaleSet(
            ScaleSet(entry.resource_name, stack.scale_set_args(entry)), **entry.bounds
        )
        for entry in stack.scale_sets
    }
    args = dataclasses.replace(stack.args, scale_sets=list(scale_sets.values()), k8s=_k8s(stack))
    listener = ScaleSetListener(stack.listener_name, args)
    pulumi.export("scaleSetIds", {n: s.scale_set.scale_set_id for n, s in scale_sets.items()})
    # Only what the runtime has: no empty alarmArns or null tableName on Kubernetes.
    for attribute, value in listener.runtime_outputs.items():
        pulumi.export(to_camel(attribute), value)
    return listener
