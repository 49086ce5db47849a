"""Warm capacity: runners kept ready ahead of demand (min_idle, schedules, adaptive).

The policy a scale set declares (``WarmPolicy``) is the component's too: it lives in
:mod:`gha_scalesets.contract.warm`.
"""

from gha_scalesets.listener.warm.policy import WarmCapacity, WarmTarget
from gha_scalesets.listener.warm.profile import ProfileStore

__all__ = ["ProfileStore", "WarmCapacity", "WarmTarget"]
