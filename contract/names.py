"""Names the component creates and the listener reads (or the other way round).

Changing one is a breaking change for deployed listeners: the component's IAM conditions,
table, event rule and task definitions are built from the same value the listener uses.
"""

from __future__ import annotations

# --- AWS resource tags ------------------------------------------------------------------------
# On runner instances, tasks and JIT parameters. The listener's IAM role may terminate and stop
# only runners tagged with a scale set id it serves; a runner may read only the parameter tagged
# with its own instance ARN.
TAG_SCALE_SET_ID = "gha-scaleset-id"
TAG_SCALE_SET_NAME = "gha-scaleset-name"
TAG_RUNNER_NAME = "gha-scaleset-runner"
TAG_INSTANCE_ID = "gha-scaleset-instance-id"
TAG_INSTANCE_ARN = "gha-scaleset-instance-arn"
TAG_TASK_ARN = "gha-scaleset-task-arn"
ECS_STARTED_BY_PREFIX = "gha-scaleset-"
"""ECS tasks are started with ``startedBy = <prefix><scale set id>``."""

# --- Kubernetes runner pods -------------------------------------------------------------------
LABEL_SCALE_SET_ID = "gha-scaleset/id"
LABEL_RUNNER_NAME = "gha-scaleset/runner-name"  # DNS-safe form of the runner name
ANNOTATION_RUNNER_NAME = "gha-scaleset/runner-name"  # the exact runner name

# --- The runner table (DynamoDB): the component creates it, the listener's registry uses it ---
PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "expires_at"

# --- EventBridge state events: the component's rule forwards them, the listener parses them ---
EC2_EVENT_SOURCE = "aws.ec2"
ECS_EVENT_SOURCE = "aws.ecs"
EC2_STATE_CHANGE = "EC2 Instance State-change Notification"
EC2_SPOT_INTERRUPTION = "EC2 Spot Instance Interruption Warning"
ECS_TASK_STATE_CHANGE = "ECS Task State Change"
EC2_EVENT_TYPES = (EC2_STATE_CHANGE, EC2_SPOT_INTERRUPTION)
ECS_EVENT_TYPES = (ECS_TASK_STATE_CHANGE,)

# --- Environment variables --------------------------------------------------------------------
LISTENER_ENV_PREFIX = "LISTENER_"
"""Every top-level listener setting is also read from ``LISTENER_<KEY>`` (JSON for objects)."""
JIT_CONFIG_ENV = "ACTIONS_RUNNER_INPUT_JITCONFIG"  # the actions runner reads --jitconfig here
JIT_PARAMETER_PATH_ENV = "GHA_JIT_PARAMETER_PATH"  # an ECS runner's parameter path
CA_PEM_ENV = "GHA_SCALESETS_CA_PEM"  # a private CA as text, for runners that write their files

# --- Private CA files on a runner or listener (a ConfigMap mount, or written at boot) ---------
RUNNER_CA_DIR = "/etc/gha-scalesets/ca"
CA_FILE = "ca.pem"  # the private CA alone
BUNDLE_FILE = "bundle.pem"  # the public roots plus the private CA

# --- CloudWatch: the listener publishes, the component's alarms and IAM condition read --------
METRICS_NAMESPACE = "GHAScaleSets"
METRICS_DIMENSION = "Listener"


def jit_parameter_path(prefix: str, scale_set_id: int | str) -> str:
    """Where the JIT parameters of one scale set's runners are: ``<prefix>/<scale set id>``;
    each runner's is ``<that>/<instance id>`` (EC2) or ``<that>/<task id>`` (ECS)."""
    return f"{prefix.rstrip('/')}/{scale_set_id}"
