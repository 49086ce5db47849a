"""Wire models of the admin API: runner groups, scale sets, runners, JIT configs, sessions."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr

from gha_scalesets.scaleset.errors import AmbiguousNameError, ProtocolError, ScaleSetError
from gha_scalesets.scaleset.wire import WireModel, WireTime

T = TypeVar("T")


class RunnerGroup(WireModel):
    """A runner group (``id`` 1 is the default group on every org)."""

    id: int
    name: str
    is_default_group: bool = False
    size: int = 0


class Label(WireModel):
    """A scale-set label; GitHub routes jobs whose ``runs-on`` matches all of a set's labels."""

    name: str
    type: str = "System"


class RunnerSetting(WireModel):
    """Runner settings of a scale set (the service only honours ``disableUpdate`` today)."""

    disable_update: bool = False


class Statistics(WireModel):
    """Job and runner counters of a scale set; ``total_assigned_jobs`` is the scaling signal."""

    total_available_jobs: int = 0
    total_acquired_jobs: int = 0
    total_assigned_jobs: int = 0
    total_running_jobs: int = 0
    total_registered_runners: int = 0
    total_busy_runners: int = 0
    total_idle_runners: int = 0


class ScaleSet(WireModel):
    """A runner scale set."""

    id: int = 0
    name: str = ""
    runner_group_id: int = 0
    runner_group_name: str = ""
    labels: list[Label] = Field(default_factory=list)
    # Capitalised on the wire: a historic quirk of the service.
    runner_setting: RunnerSetting = Field(default_factory=RunnerSetting, alias="RunnerSetting")
    created_on: WireTime = None
    runner_jit_config_url: str | None = None
    statistics: Statistics | None = None


class RunnerReference(WireModel):
    """A registered runner (an "agent" in the service's vocabulary)."""

    id: int
    name: str
    runner_scale_set_id: int = 0


class JitConfigResponse(WireModel):
    """Response of ``generatejitconfig``; the encoded config is a single-use secret."""

    runner: RunnerReference
    encoded_jit_config: SecretStr = Field(alias="encodedJITConfig")


class JitConfigResult(BaseModel):
    """One runner of a JIT batch: ``config`` and ``runner`` on success, else ``error``."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    name: str
    config: str | None = Field(default=None, repr=False)
    runner: RunnerReference | None = None
    error: ScaleSetError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class MessageSession(WireModel):
    """A message session of a listener on one scale set.

    The client refreshes it in place (same object) when the message-queue token expires.
    """

    session_id: str
    owner_name: str = ""
    runner_scale_set: ScaleSet | None = None
    message_queue_url: str = ""
    message_queue_access_token: SecretStr = SecretStr("")
    statistics: Statistics | None = None

    _scale_set_id: int = PrivateAttr(default=0)
    # The label of the credential that opened (or last refreshed) it: its calls stay there.
    _credential: str = PrivateAttr(default="")
    # Single-flights token refreshes of this session (created on first 401, on its loop).
    _refresh_lock: asyncio.Lock | None = PrivateAttr(default=None)

    @property
    def scale_set_id(self) -> int:
        """The id of the session's scale set (from the response, else from the create call)."""
        if self.runner_scale_set is not None and self.runner_scale_set.id:
            return self.runner_scale_set.id
        return self._scale_set_id

    def replace_with(self, other: MessageSession) -> None:
        """Take every field of ``other`` (a refreshed copy) while keeping this object's identity."""
        for name in type(self).model_fields:
            setattr(self, name, getattr(other, name))
        if other._scale_set_id:
            self._scale_set_id = other._scale_set_id
        self._credential = other._credential or self._credential


class Page(WireModel, Generic[T]):
    """A VSS list response ``{"count": n, "value": [...]}``."""

    count: int = 0
    value: list[T] = Field(default_factory=list)

    def single(self, what: str) -> T | None:
        """The only item, ``None`` when empty; more than one is an error (names are unique)."""
        if self.count == 0:
            return None
        if self.count > 1:
            raise AmbiguousNameError(f"{self.count} {what} match; refusing to pick one")
        if not self.value:
            raise ProtocolError(f"{what}: count is 1 but the list is empty")
        return self.value[0]
