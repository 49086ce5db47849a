"""The learned time-of-day demand profile of a scale set, and where it is kept.

Job arrivals per minute for each 15-minute slot of a weekday and of a weekend day (in the
adaptive policy's time zone), each an exponentially weighted mean over the days seen. The
leader saves it to the registry at every slot's end, and a restarted or newly elected
leader loads it, so nothing learned is lost with a process.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SLOT_MINUTES = 15
SLOTS_PER_DAY = 24 * 60 // SLOT_MINUTES
# Weight of the newest day in a slot's mean: about the last three days of that kind count.
LEARNING_RATE = 0.3
FORMAT_VERSION = 1

Slots = list[float | None]


def _empty() -> Slots:
    return [None] * SLOTS_PER_DAY


class DemandProfile(BaseModel):
    """Arrivals per minute by slot; ``None`` for a slot never observed."""

    model_config = ConfigDict(extra="forbid")

    version: int = FORMAT_VERSION
    time_zone: str
    weekday: Slots = Field(default_factory=_empty, min_length=SLOTS_PER_DAY)
    weekend: Slots = Field(default_factory=_empty, min_length=SLOTS_PER_DAY)
    slots_learned: int = 0  # how much history stands behind it

    def _day(self, local: datetime) -> Slots:
        return self.weekend if local.weekday() >= 5 else self.weekday

    @staticmethod
    def slot(local: datetime) -> int:
        return (local.hour * 60 + local.minute) // SLOT_MINUTES

    def rate(self, local: datetime) -> float | None:
        """Expected arrivals per minute around ``local``: its slot weighted with both
        neighbours (a slot holds few arrivals at night, so one alone is noisy)."""
        day, slot = self._day(local), self.slot(local)
        weighted = [
            (day[(slot + offset) % SLOTS_PER_DAY], weight)
            for offset, weight in ((-1, 0.25), (0, 0.5), (1, 0.25))
        ]
        known = [(value, weight) for value, weight in weighted if value is not None]
        if not known:
            return None
        return sum(v * w for v, w in known) / sum(w for _, w in known)

    def learn(self, local: datetime, per_minute: float) -> None:
        """Fold one observed slot (starting at ``local``) into the profile."""
        day, slot = self._day(local), self.slot(local)
        old = day[slot]
        day[slot] = per_minute if old is None else old + LEARNING_RATE * (per_minute - old)
        self.slots_learned += 1

    def to_store(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_store(cls, data: dict[str, Any], time_zone: str) -> DemandProfile | None:
        """The stored profile, or ``None`` if it is unreadable, from another format, or
        learned in another time zone (its slots would be shifted)."""
        try:
            profile = cls.model_validate(data)
        except ValidationError:
            return None
        if profile.version != FORMAT_VERSION or profile.time_zone != time_zone:
            return None
        return profile


@runtime_checkable
class ProfileStore(Protocol):
    """Where a scale set's demand profile is kept: the runner registry (memory, DynamoDB) or,
    on Kubernetes, a ConfigMap."""

    async def load_profile(self, scale_set_id: int) -> dict[str, Any] | None: ...

    async def save_profile(self, scale_set_id: int, profile: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...
