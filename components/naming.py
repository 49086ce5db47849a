"""Names the component derives from its own name and stack: child names, tags, paths."""

from __future__ import annotations

import re
from dataclasses import dataclass

TAG_KEY = "gha-scalesets:listener"
"""Tag on every AWS resource of a listener; the listener's IAM role is scoped by it."""

POOL_WAIT_ALARM_SECONDS = 5.0
"""A wait this long for a free connection to GitHub means the connection budget is too small
for the scale sets served (a right-sized one waits milliseconds): the CloudWatch alarm and the
Prometheus rule fire on it."""

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def is_safe_name(name: str) -> bool:
    """Whether ``name`` fits in SSM paths, log group names, tags and Kubernetes labels."""
    return bool(_SAFE.match(name))


@dataclass(frozen=True)
class ListenerNames:
    """Every name of one listener, unique per (stack, component name) within an account."""

    component: str
    stack: str

    def child(self, suffix: str) -> str:
        """The Pulumi resource name of a child resource."""
        return f"{self.component}-{suffix}"

    @property
    def listener_id(self) -> str:
        """The value of :data:`TAG_KEY` and of the CloudWatch ``Listener`` dimension."""
        return f"{self.stack}.{self.component}"

    @property
    def ssm_prefix(self) -> str:
        """Where the listener writes per-runner JIT config parameters."""
        return f"/gha-scalesets/{self.stack}/{self.component}/jit"

    def log_group(self, kind: str) -> str:
        return f"/gha-scalesets/{self.stack}/{self.component}/{kind}"
