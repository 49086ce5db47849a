"""``ScaleSetListener``: the listener with its secrets, cache table and alarms, in one resource."""

from __future__ import annotations

import pulumi

from gha_scalesets.components.args import ScaleSetListenerArgs
from gha_scalesets.components.deployment import Deployment
from gha_scalesets.components.naming import ListenerNames
from gha_scalesets.components.settings import scale_set_entries
from gha_scalesets.components.validation import has_provider, validate
from gha_scalesets.extras import needs_extra

TYPE = "gha-scalesets:index:ScaleSetListener"


class ScaleSetListener(pulumi.ComponentResource):
    """Deploys the listener for ``args.scale_sets`` on EC2, ECS or Kubernetes.

    Every resource is a child named ``<name>-<part>``. Outputs hold identifiers only, never the
    credential. Invalid ``args`` fail before anything is declared, listing every problem.
    """

    listener_id: pulumi.Output[str]
    """The Auto Scaling group name (ec2), ECS service ARN (ecs) or ``namespace/deployment``."""
    secret_name: pulumi.Output[str]
    secret_arn: pulumi.Output[str | None]
    kms_key_arn: pulumi.Output[str | None]
    table_name: pulumi.Output[str | None]
    queue_url: pulumi.Output[str | None]
    dead_letter_queue_url: pulumi.Output[str | None]
    runner_template: pulumi.Output[str | None]
    """The runner launch template id (ec2) or task definition ARN (ecs)."""
    alarm_arns: pulumi.Output[dict[str, str]]
    alert_rules_config_map: pulumi.Output[str | None]
    """k8s: the ConfigMap holding the Prometheus alert rules."""
    runtime_outputs: dict[str, pulumi.Output[object]]
    """The outputs above that this runtime has, by attribute name (the rest are None or {})."""

    def __init__(
        self, name: str, args: ScaleSetListenerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        validate(
            name,
            args,
            has_k8s_provider=args.k8s.provider is not None or has_provider(opts, "kubernetes"),
        )
        super().__init__(TYPE, name, None, opts)
        names = ListenerNames(component=name, stack=pulumi.get_stack())
        scale_sets = scale_set_entries(args.bounded_scale_sets())
        # A runtime's module loads only when used: an EC2/ECS user has no Kubernetes SDK
        # installed (gha-scalesets[aws]), a Kubernetes user no AWS one (gha-scalesets[k8s]).
        if args.runtime == "k8s":
            with needs_extra("k8s", "runtime 'k8s'"):
                from gha_scalesets.components import k8s

            child_opts = pulumi.ResourceOptions(parent=self, provider=args.k8s.provider)
            deployment = k8s.deploy(names, args, args.k8s.namespace or "", scale_sets, child_opts)
        else:
            with needs_extra("aws", f"runtime {args.runtime!r}"):
                from gha_scalesets.components import aws_deploy

            deployment = aws_deploy.deploy(names, args, scale_sets, self)
        self._publish(deployment)

    def _publish(self, d: Deployment) -> None:
        outputs: dict[str, pulumi.Input[object]] = {
            "listener_id": d.listener_id,
            "secret_name": d.secret_name,
            "secret_arn": d.secret_arn,
            "kms_key_arn": d.kms_key_arn,
            "table_name": d.table_name,
            "queue_url": d.queue_url,
            "dead_letter_queue_url": d.dead_letter_queue_url,
            "runner_template": d.runner_template,
            "alarm_arns": d.alarm_arns,
            "alert_rules_config_map": d.alert_rules,
        }
        for key, value in outputs.items():
            setattr(self, key, pulumi.Output.from_input(value))
        self.runtime_outputs = {
            key: getattr(self, key) for key, value in outputs.items() if value not in (None, {})
        }
        self.register_outputs(outputs)
