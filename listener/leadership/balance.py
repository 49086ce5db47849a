"""Each listener replica leads its share of the scale sets (docs/listener.md: "Capacity").

Every replica writes a member record each renew interval (its heartbeat and how many scale
sets it leads) and reads the others'. A member is live while its record keeps changing: one
unchanged for a lease duration (on this replica's own clock) is dead, one unchanged for much
longer is deleted. With ``R`` live replicas and ``N`` scale sets, a replica's share is
``ceil(N / R)``:

- its electors take free or released leases only while it leads fewer (:meth:`reserve`);
- it hands over what it leads beyond its share, and one more while it leads more than
  ``floor(N / R)`` and another replica leads fewer than that, so that the split ends even to
  within one scale set (:meth:`tick`, through the ``shed`` callback).

A replica that joins is counted at the others' next heartbeat read and gets its share as they
hand over; one that stops leaves its record first (so the others' shares grow before its
leases are released); one that dies keeps its record until it goes stale, while its expired
leases are taken over at once regardless of shares and rebalanced afterwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from gha_scalesets.listener.leadership.base import LeaseStore, Member

log = structlog.get_logger("listener.leadership")

# A record unchanged for this many lease durations (and at least a minute) is deleted.
_FORGET_AFTER_DURATIONS = 3.0
_FORGET_AFTER_MIN_SECONDS = 60.0


def member_group(config_url: str, scale_sets: Sequence[Any]) -> str:
    """The group of replicas that serve the same scale sets: a digest of what they serve.

    Replicas of another listener (other scale sets) sharing the store never count as members.
    """
    text = json.dumps([config_url, sorted(json.dumps(s, sort_keys=True) for s in scale_sets)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Balancer:
    """This replica's share of ``total`` scale sets; the electors' :class:`LeaseGate`.

    ``shed(count)`` hands over up to ``count`` of the scale sets this replica leads and
    returns how many handovers it started; call :meth:`handed_over` as each one ends.
    """

    def __init__(
        self,
        store: LeaseStore,
        group: str,
        identity: str,
        total: int,
        *,
        duration: float,
        renew_interval: float,
        shed: Callable[[int], int],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self.group = group
        self.identity = identity
        self.total = total
        self._duration = duration
        self._renew = renew_interval
        self._shed = shed
        self._clock = clock
        self._sleep = sleep
        self.leading = 0
        self._pending = 0  # reserved by electors whose swap is in flight
        self.handing_over = 0
        self._seen: dict[str, tuple[str, float]] = {}  # identity -> (version, first seen at)
        self._others: list[Member] = []  # live members besides this one

    # -- the share ---------------------------------------------------------------------------

    @property
    def replicas(self) -> int:
        """Live replicas, this one included."""
        return 1 + len(self._others)

    @property
    def share(self) -> int:
        """At most this many scale sets for this replica: ``ceil(N / R)``."""
        return math.ceil(self.total / self.replicas)

    def reserve(self) -> bool:
        if self.leading + self._pending >= self.share:
            return False
        self._pending += 1
        return True

    def settle(self, won: bool) -> None:
        self._pending -= 1
        self.leading += won

    def changed(self, leading: bool) -> None:
        self.leading += 1 if leading else -1

    def handed_over(self) -> None:
        self.handing_over -= 1

    # -- membership --------------------------------------------------------------------------

    def _live(self, members: list[Member], now: float) -> tuple[list[Member], list[str]]:
        """Members whose record changed within a lease duration (a first sight counts), and
        those silent for so long that their record should go."""
        live, stale = [], []
        forget_after = max(_FORGET_AFTER_MIN_SECONDS, _FORGET_AFTER_DURATIONS * self._duration)
        current = {m.identity for m in members}
        self._seen = {k: v for k, v in self._seen.items() if k in current}
        for member in members:
            if member.identity == self.identity:
                continue
            seen = self._seen.get(member.identity)
            if seen is None or seen[0] != member.version:
                seen = self._seen[member.identity] = (member.version, now)
            if now - seen[1] < self._duration:
                live.append(member)
            elif now - seen[1] >= forget_after:
                stale.append(member.identity)
        return live, stale

    def excess(self) -> int:
        """How many scale sets to hand over now."""
        share, floor = self.share, self.total // self.replicas
        leading = self.leading - self.handing_over
        excess = leading - share
        if excess <= 0 and leading > floor and any(m.leading < floor for m in self._others):
            excess = 1
        if not any(m.leading < share for m in self._others):
            return 0  # nobody could take them
        return max(0, excess)

    async def tick(self) -> None:
        """One heartbeat: write this replica's record, read the others', hand over excess."""
        await self._store.beat(self.group, self.identity, self.leading)
        self._others, stale = self._live(await self._store.members(self.group), self._clock())
        for identity in stale:
            await self._store.remove_member(self.group, identity)
            log.info("removed the record of a replica gone silent", member=identity)
        excess = self.excess()
        if excess:
            started = self._shed(excess)
            self.handing_over += started
            log.info(
                "handing scale sets over to balance the replicas",
                handing_over=started,
                leading=self.leading,
                share=self.share,
                replicas=self.replicas,
            )

    async def run(self) -> None:
        """Heartbeat every renew interval until cancelled (store outages are waited out);
        the first one is :meth:`tick`'s, before the electors start."""
        while True:
            await self._sleep(self._renew)
            try:
                await self.tick()
            except Exception as exc:
                log.warning("replica heartbeat failed", error=str(exc))

    async def leave(self) -> None:
        """Remove this replica's record (graceful stop), so the others' shares grow now."""
        try:
            await self._store.remove_member(self.group, self.identity)
        except Exception as exc:  # it goes stale within a lease duration anyway
            log.warning("could not remove this replica's record", error=str(exc))
