"""What a runtime deployment hands back to the component, to become its outputs."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi


@dataclass
class Deployment:
    """Identifiers of what was deployed; ``None`` where the runtime has no such part."""

    listener_id: pulumi.Output[str]  # ASG name, ECS service ARN, or "<namespace>/<deployment>"
    secret_name: pulumi.Output[str]
    runner_template: pulumi.Output[str] | None = None  # launch template id / task definition ARN
    secret_arn: pulumi.Output[str] | None = None
    kms_key_arn: pulumi.Output[str] | None = None
    table_name: pulumi.Output[str] | None = None
    queue_url: pulumi.Output[str] | None = None
    dead_letter_queue_url: pulumi.Output[str] | None = None
    alarm_arns: dict[str, pulumi.Output[str]] = field(default_factory=dict)
    alert_rules: pulumi.Output[str] | None = None  # k8s: the ConfigMap with Prometheus rules
