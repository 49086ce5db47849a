"""Leader election for one scale set over a :class:`~listener.leadership.base.LeaseStore`.

A standby reads the lease twice per renew interval and takes it when it is free, released, or
unchanged for its whole duration (its holder died or lost the store): it notices an expiry
within half a renew interval. The active renews every
renew interval and considers itself deposed — stops serving at once — when a renewal is
refused (another replica took the lease) or when no renewal succeeded for ``duration -
renew_interval``: it steps down one renew interval before any standby can take the lease over.

With a :class:`LeaseGate` (the replica's share, ``listener.leadership.balance``) a standby
takes a free or released lease only while its replica leads fewer than its share; one left
free for a whole lease duration is taken anyway, and an expired one always (a dead holder's
scale sets are taken over at once and rebalanced afterwards). A lease this replica handed
over is left for another replica the same way.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from gha_scalesets.listener.leadership.base import Lease, LeaseStore, Terms

log = structlog.get_logger("listener.leadership")


@dataclass(frozen=True)
class Takeover:
    """How leadership was won: ``reason`` is ``free`` (never held), ``released`` (a graceful
    stop or a handover), ``expired`` (the holder went silent) or ``own`` (this replica's own
    earlier term)."""

    reason: str
    previous_holder: str | None
    previous_session_id: str | None  # a session the new active must delete before its own


class LeaseGate(Protocol):
    """How many scale sets this replica may lead (``listener.leadership.balance.Balancer``)."""

    def reserve(self) -> bool:
        """Claim a slot for a free or released lease; False when the share is full."""
        ...

    def settle(self, won: bool) -> None:
        """The claimed lease was won (or not)."""
        ...

    def changed(self, leading: bool) -> None:
        """A lease was won without a claim (``True``) or lost / released (``False``)."""
        ...


Reader = Callable[[int], Awaitable[Lease | None]]


class LeaderElector:
    """Leadership of one scale set for one replica (``identity`` is unique per process).

    ``reader`` serves the standby's reads (default: ``store.read``; a replica shares one
    batched snapshot among its electors); writes and the active's reads use ``store``.
    """

    def __init__(
        self,
        store: LeaseStore,
        scale_set_id: int,
        identity: str,
        *,
        duration: float,
        renew_interval: float,
        gate: LeaseGate | None = None,
        reader: Reader | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.scale_set_id = scale_set_id
        self.identity = identity
        self._duration = duration
        self._renew = renew_interval
        self._gate = gate
        self._reader = reader or store.read
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()  # one write at a time: concurrent swaps would depose us
        self.lease: Lease | None = None  # set while this replica leads
        self.standing_by = False  # waiting behind another replica's live lease
        self._session_id: str | None = None
        self._deadline = 0.0  # stop serving at this time unless a renewal succeeds first
        self._handed_over: str | None = None  # the version of our last handover release

    @property
    def leading(self) -> bool:
        return self.lease is not None

    def _terms(self, session_id: str | None) -> Terms:
        return Terms(self.identity, self._duration, session_id)

    def _set(self, lease: Lease | None) -> None:
        if self._gate is not None and (lease is None) != (self.lease is None):
            self._gate.changed(lease is not None)
        self.lease = lease

    def _won(self, lease: Lease, started: float) -> None:
        self._set(lease)
        self._deadline = self._fence(started)

    def _fence(self, started: float) -> float:
        """When to stop serving unless a renewal succeeds first (never on an exclusive store)."""
        if getattr(self.store, "exclusive", False):
            return math.inf
        return started + self._duration - self._renew

    def _reason(self, current: Lease | None, unchanged: bool) -> tuple[str | None, bool]:
        """Whether to take the lease now: ``(reason, claimed)``, reason ``None`` to stand by;
        ``claimed`` when a slot of the gate was reserved for it."""
        if current is not None and current.holder == self.identity:
            return "own", False
        if current is not None and current.holder is not None:
            return ("expired" if unchanged else None), False
        reason = "free" if current is None else "released"
        ours = current is not None and current.version == self._handed_over
        if not ours and (self._gate is None or self._gate.reserve()):
            return reason, self._gate is not None
        return (reason if unchanged else None), False

    async def acquire(self) -> Takeover:
        """Wait as a standby until this replica holds the lease."""
        seen: tuple[str, float] | None = None  # (version, first seen at) of the lease
        fresh = False  # after a lost race the snapshot is stale: read the store itself
        while True:
            try:
                read = self.store.read if fresh else self._reader
                current = await read(self.scale_set_id)
            except Exception as exc:
                log.warning("cannot read the lease", scale_set_id=self.scale_set_id, error=str(exc))
                await self._sleep(self._renew)
                continue
            now = self._clock()
            version = current.version if current is not None else ""
            if seen is None or seen[0] != version:
                seen = (version, now)
            duration = current.duration_seconds if current is not None else self._duration
            reason, claimed = self._reason(current, now - seen[1] >= duration)
            if reason is None:
                self.standing_by = True
                fresh = False
                await self._sleep(self._renew / 2)
                continue
            try:
                lease = await self.store.swap(self.scale_set_id, current, self._terms(None))
            except Exception as exc:
                log.warning("cannot take the lease", scale_set_id=self.scale_set_id, error=str(exc))
                lease = None
            if claimed:
                assert self._gate is not None
                self._gate.settle(lease is not None)
            if lease is None:
                fresh = True
                continue  # another standby (or the holder) wrote first: look again at once
            self.standing_by = False
            if claimed:
                self.lease = lease  # already counted by the claim
                self._deadline = self._fence(now)
            else:
                self._won(lease, now)
            self._session_id = None
            return Takeover(
                reason,
                current.holder if current else None,
                current.session_id if current else None,
            )

    async def _write(self) -> bool:
        """One renewal; False when leadership is lost (refused, or the deadline passed)."""
        async with self._lock:
            if self.lease is None:
                return False
            started = self._clock()
            remaining = self._deadline - started
            reason = ""
            try:
                if remaining <= 0:
                    raise TimeoutError
                # Not wait_for: on Python 3.11 it can swallow a cancellation that arrives as
                # the renewal completes, and a cancelled guard would then renew on forever.
                async with asyncio.timeout(remaining):
                    renewed = await self._renew_or_adopt()
            except TimeoutError:
                renewed, reason = None, "no renewal succeeded before the fencing deadline"
            except Exception as exc:
                log.warning("lease renewal failed", scale_set_id=self.scale_set_id, error=str(exc))
                if self._clock() < self._deadline:
                    return True  # the next tick retries; the deadline still fences
                renewed, reason = None, "no renewal succeeded before the fencing deadline"
            if renewed is None:
                reason = reason or "another replica took the lease"
                log.warning("leadership lost", scale_set_id=self.scale_set_id, reason=reason)
                self._set(None)
                return False
            self._won(renewed, started)
            return True

    async def _renew_or_adopt(self) -> Lease | None:
        assert self.lease is not None
        terms = self._terms(self._session_id)
        renewed = await self.store.swap(self.scale_set_id, self.lease, terms)
        if renewed is not None:
            return renewed
        # Refused. A write of ours whose answer was lost (a timeout) also moved the version:
        # if the lease still names this replica, nobody else has taken it.
        current = await self.store.read(self.scale_set_id)
        if current is None or current.holder != self.identity:
            return None
        return await self.store.swap(self.scale_set_id, current, terms)

    async def hold(self) -> None:
        """Renew until leadership is lost, then return (the caller stops serving at once)."""
        if self._deadline == math.inf:
            await asyncio.Event().wait()  # an exclusive store: nobody else can take it
        while True:
            await self._sleep(max(0.0, min(self._renew, self._deadline - self._clock())))
            if not await self._write():
                return

    async def record_session(self, session_id: str | None) -> bool:
        """Store the message session in the lease now (a successor deletes it by this id)."""
        self._session_id = session_id
        return await self._write()

    async def confirm(self) -> bool:
        """Renew now: whether this replica still leads (before recreating a lost session)."""
        return await self._write()

    async def release(self, *, hand_over: bool = False) -> None:
        """Hand the lease back: a standby takes over at its next read. A graceful stop has
        deleted the session first; a handover (``hand_over``) leaves it in the lease for the
        new active to delete, and this replica does not take that lease back itself."""
        async with self._lock:
            lease = self.lease
            if lease is None:
                return
            self._set(None)
            session = self._session_id if hand_over else None
            try:
                released = await self.store.swap(
                    self.scale_set_id, lease, Terms(None, self._duration, session)
                )
            except Exception as exc:  # it expires on its own
                log.warning(
                    "could not release the lease", scale_set_id=self.scale_set_id, error=str(exc)
                )
                return
            if hand_over and released is not None:
                self._handed_over = released.version
