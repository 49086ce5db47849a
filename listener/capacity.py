"""What serving the configured scale sets takes: connections and open files, checked at startup.

Every served scale set holds one connection in its long poll for the service's ~50 s hold, so
the long polls get their own budget (one per scale set plus headroom) and every other request
another (``scaleset.sharding``): polls never starve sessions or JIT configs of a connection.
A configuration that cannot be served is refused at startup with what to change.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from dataclasses import dataclass

from gha_scalesets.listener.config import ListenerSettings
from gha_scalesets.scaleset.pool import PoolSettings

# Polls beyond one per scale set: a session being replaced while its successor already polls.
LONG_POLL_HEADROOM = 8
# Besides GitHub connections: registry, runtime, lease store and metrics server connections,
# log files and the interpreter's own.
OTHER_OPEN_FILES = 256

Limits = tuple[int, int]


class CapacityError(Exception):
    """The configuration cannot be served by this process; the message says what to change."""


@dataclass(frozen=True)
class CapacityPlan:
    """Connection budgets for ``scale_sets`` scale sets."""

    scale_sets: int
    long_poll_connections: int
    api_connections: int

    @property
    def open_files(self) -> int:
        return self.long_poll_connections + self.api_connections + OTHER_OPEN_FILES

    def pool_settings(self) -> PoolSettings:
        return PoolSettings(
            max_connections=self.api_connections,
            max_keepalive_connections=self.api_connections,
            long_poll_connections=self.long_poll_connections,
        )


def plan(settings: ListenerSettings) -> CapacityPlan:
    """The budgets ``settings`` ask for (raises :class:`CapacityError` if they cannot serve)."""
    sets = len(settings.scale_sets)
    capacity = settings.capacity
    polls = capacity.long_poll_connections
    if polls is None:
        polls = sets + LONG_POLL_HEADROOM
    elif polls < sets:
        raise CapacityError(
            f"capacity.long_poll_connections ({polls}) is below the number of scale sets "
            f"({sets}): each scale set holds a connection in its long poll, so {sets - polls} "
            f"of them would never be polled; set it to at least {sets}, or remove it (default: "
            f"one per scale set plus {LONG_POLL_HEADROOM})"
        )
    return CapacityPlan(sets, polls, capacity.api_connections)


def ensure_open_files(
    needed: int,
    *,
    get: Callable[[int], Limits] = resource.getrlimit,
    set_: Callable[[int, Limits], None] = resource.setrlimit,
) -> int:
    """Raise this process's soft open-files limit to ``needed`` if below (up to the hard
    limit, which any process may); the limit now in force. Raises :class:`CapacityError` if
    the hard limit is lower."""
    soft, hard = get(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise CapacityError(
            f"serving these scale sets needs up to {needed} open files (connections), but this "
            f"process may open at most {hard} (RLIMIT_NOFILE hard limit): raise it (`ulimit -n`, "
            "systemd LimitNOFILE, the container's nofile ulimit) or split the scale sets over "
            "more listeners"
        )
    set_(resource.RLIMIT_NOFILE, (needed, hard))
    return needed
