"""The AWS error proxy with an ordered list of faults, for the runtime tests.

moto always has capacity and never throttles; :class:`FaultProxy` answers the requests its
faults match with the error AWS would send (see :mod:`benchmarks.aws_error_proxy`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks.aws_error_proxy import AwsError, AwsErrorProxy


@dataclass
class Fault:
    """Answer ``action`` requests whose parameters satisfy ``when`` with an AWS error."""

    action: str
    code: str
    status: int = 400
    when: Callable[[Mapping[str, Any]], bool] = lambda _params: True
    times: int | None = None  # None: every matching request

    def matches(self, action: str, params: Mapping[str, Any]) -> bool:
        return (
            action == self.action and (self.times is None or self.times > 0) and self.when(params)
        )


class FaultProxy(AwsErrorProxy):
    """Forwards to ``upstream``; ``faults`` are checked in order; ``hits`` counts actions."""

    def __init__(self, upstream: str) -> None:
        self.faults: list[Fault] = []
        self.hits: Counter[str] = Counter()
        super().__init__(upstream, self._choose)

    def _choose(self, action: str, params: Mapping[str, Any]) -> AwsError | None:
        self.hits[action] += 1
        for fault in self.faults:
            if fault.matches(action, params):
                if fault.times is not None:
                    fault.times -= 1
                return AwsError(fault.code, fault.status)
        return None
