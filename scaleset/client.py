"""The async client of the runner scale-set API."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from typing import Any

from gha_scalesets.scaleset.base import SCALE_SETS
from gha_scalesets.scaleset.conventions import json_body
from gha_scalesets.scaleset.errors import (
    ConflictError,
    RunnerExistsError,
    RunnerGroupNotFoundError,
    RunnerNotFoundError,
    ScaleSetError,
    ScaleSetNotFoundError,
)
from gha_scalesets.scaleset.models import (
    JitConfigResponse,
    JitConfigResult,
    Label,
    Page,
    RunnerGroup,
    RunnerReference,
    ScaleSet,
)
from gha_scalesets.scaleset.sessions import SessionMethods
from gha_scalesets.scaleset.transport import Outcome
from gha_scalesets.scaleset.wire import GO_ZERO_TIME

log = logging.getLogger("scaleset")

AGENTS = "_apis/distributedtask/pools/0/agents"


def _labels(labels: Sequence[str | Label]) -> list[dict[str, str]]:
    return [
        (label if isinstance(label, Label) else Label(name=label)).to_wire() for label in labels
    ]


def _scale_set_body(fields: dict[str, Any], disable_update: bool | None) -> bytes:
    """Create/update body; ``RunnerSetting`` and ``createdOn`` are always sent (reference §4.2)."""
    setting = {} if disable_update is None else {"disableUpdate": disable_update}
    body = {k: v for k, v in fields.items() if v not in (None, "", 0, [])}
    body["RunnerSetting"] = setting
    body["createdOn"] = GO_ZERO_TIME
    return json_body(body)


class Client(SessionMethods):
    """Async client for one GitHub config URL (enterprise, org or repository).

    Every Client of the process shares the token cache and, per event loop, one tuned HTTP pool;
    admin calls run concurrently (no global mutex). Use as ``async with Client(...) as c:`` or
    call :meth:`aclose`.

    Options: ``http`` (your own ``httpx.AsyncClient``, left open), ``retry``, ``cache_ttl``
    (seconds; enables the read cache), ``subsystem`` and ``user_agent_extra`` (the JSON
    User-Agent; :meth:`identify` adds the scale set id), ``proxy`` (a proxy URL that wins over
    ``HTTPS_PROXY``/``HTTP_PROXY``), ``no_proxy`` (hosts reached directly; default
    ``NO_PROXY``), ``ca_bundle`` (extra root CAs: PEM text or file),
    ``observer(method, route, status_or_None, seconds)`` called for every HTTP attempt,
    ``timeout`` per request, ``long_poll_timeout`` (read timeout of the message poll, above
    the service's ~50 s hold), ``pool_settings``, ``token_cache`` and ``pacing``
    (:class:`~scaleset.pacing.PacingSettings`). ``credentials`` may be several of the same org
    or enterprise: calls go to the one with the most rate-limit budget left, sessions stay on
    the one that opened them.
    """

    # -- runner groups and scale sets -------------------------------------------------------

    async def get_runner_group_by_name(self, name: str) -> RunnerGroup:
        """The runner group called ``name`` (raises :class:`RunnerGroupNotFoundError`)."""

        async def load() -> RunnerGroup:
            route = "_apis/runtime/runnergroups/"
            outcome = await self._admin("GET", route, route, query={"groupName": name})
            page = Page[RunnerGroup].from_bytes(self._ok(outcome), outcome.operation)
            group = page.single(f"runner groups named {name!r}")
            if group is None:
                raise RunnerGroupNotFoundError(
                    f"no runner group named {name!r} at {self.config.url}; create it in the "
                    "organization's Actions settings or use 'Default'"
                )
            return group

        return await self._cached(("runner_group", name), load)

    async def _read_scale_set(self, scale_set_id: int) -> ScaleSet:
        outcome = await self._admin(
            "GET", f"{SCALE_SETS}/{scale_set_id}", f"{SCALE_SETS}/{{scaleSetId}}"
        )
        body = self._ok(outcome, not_found=ScaleSetNotFoundError)
        return ScaleSet.from_bytes(body, outcome.operation)

    async def get_scale_set(self, scale_set_id: int) -> ScaleSet:
        """The scale set ``scale_set_id`` (raises :class:`ScaleSetNotFoundError`)."""
        return await self._cached(
            ("scale_set", scale_set_id), lambda: self._read_scale_set(scale_set_id)
        )

    async def get_scale_set_by_name(self, runner_group_id: int, name: str) -> ScaleSet | None:
        """The scale set ``name`` of a runner group, or ``None``."""

        async def load() -> ScaleSet | None:
            outcome = await self._admin(
                "GET",
                SCALE_SETS,
                SCALE_SETS,
                query={"runnerGroupId": runner_group_id, "name": name},
            )
            page = Page[ScaleSet].from_bytes(self._ok(outcome), outcome.operation)
            return page.single(f"scale sets named {name!r} in runner group {runner_group_id}")

        return await self._cached(("scale_set", runner_group_id, name), load)

    async def create_scale_set(
        self,
        *,
        name: str,
        runner_group_id: int,
        labels: Sequence[str | Label] | None = None,
        disable_update: bool = True,
    ) -> ScaleSet:
        """Create a scale set; without ``labels`` its name is its only label (as upstream)."""
        body = _scale_set_body(
            {"name": name, "runnerGroupId": runner_group_id, "labels": _labels(labels or [name])},
            disable_update,
        )
        outcome = await self._admin("POST", SCALE_SETS, SCALE_SETS, body=body)
        if self._cache:
            self._cache.invalidate("scale_set")
        if not outcome.ok and outcome.ambiguous and isinstance(outcome.error(), ConflictError):
            # An earlier attempt created it but its response was lost: adopt our own creation.
            existing = await self.get_scale_set_by_name(runner_group_id, name)
            if existing is not None:
                return existing
        created = ScaleSet.from_bytes(self._ok(outcome), outcome.operation)
        if self._cache:
            self._cache.put(("scale_set", created.id), created)
        return created

    async def update_scale_set(
        self,
        scale_set_id: int,
        *,
        name: str | None = None,
        labels: Sequence[str | Label] | None = None,
        runner_group_id: int | None = None,
        disable_update: bool | None = None,
    ) -> ScaleSet:
        """Change the given fields of a scale set; the others keep their current value.

        Like upstream's controller it reads the scale set, applies the changes and sends the
        whole desired scale set: the service's handling of omitted fields is undocumented (and
        ``RunnerSetting`` is always replaced whole). A label equal to the old name follows a
        rename unless ``labels`` are given.
        """
        current = await self._read_scale_set(scale_set_id)
        new_name = name or current.name
        if labels is None:
            labels = [
                Label(name=new_name, type=label.type) if label.name == current.name else label
                for label in current.labels
            ]
        body = _scale_set_body(
            {
                "name": new_name,
                "runnerGroupId": runner_group_id or current.runner_group_id,
                "labels": _labels(labels or [new_name]),
            },
            current.runner_setting.disable_update if disable_update is None else disable_update,
        )
        path = f"{SCALE_SETS}/{scale_set_id}"
        outcome = await self._admin("PATCH", path, f"{SCALE_SETS}/{{scaleSetId}}", body=body)
        if self._cache:
            self._cache.invalidate("scale_set")
        updated = ScaleSet.from_bytes(
            self._ok(outcome, not_found=ScaleSetNotFoundError), outcome.operation
        )
        if self._cache:
            self._cache.put(("scale_set", updated.id), updated)
        return updated

    async def delete_scale_set(self, scale_set_id: int) -> None:
        """Delete a scale set (a retry that finds it already gone counts as success)."""
        path = f"{SCALE_SETS}/{scale_set_id}"
        outcome = await self._admin("DELETE", path, f"{SCALE_SETS}/{{scaleSetId}}")
        if self._cache:
            self._cache.invalidate("scale_set")
        if outcome.status == 404 and outcome.ambiguous:
            return
        self._ok(outcome, not_found=ScaleSetNotFoundError)

    # -- JIT configs ------------------------------------------------------------------------

    async def _jit_once(self, scale_set_id: int, name: str, work_folder: str) -> Outcome:
        return await self._admin(
            "POST",
            f"{SCALE_SETS}/{scale_set_id}/generatejitconfig",
            f"{SCALE_SETS}/{{scaleSetId}}/generatejitconfig",
            body=json_body({"name": name, "workFolder": work_folder}),
        )

    async def generate_jit_config(
        self, scale_set_id: int, name: str, *, work_folder: str = ""
    ) -> JitConfigResult:
        """Register runner ``name`` and return its single-use JIT config (raises on failure).

        If a retried request finds the name taken after an earlier attempt's response was lost,
        that runner is our own orphan (its config is unknown): it is removed and created again,
        so exactly one runner exists afterwards.
        """
        outcome = await self._jit_once(scale_set_id, name, work_folder)
        if not outcome.ok and outcome.ambiguous and isinstance(outcome.error(), RunnerExistsError):
            orphan = await self.get_runner_by_name(name)
            if orphan is not None and orphan.runner_scale_set_id not in (0, scale_set_id):
                raise outcome.error()
            if orphan is not None:
                log.info("scaleset removing orphan runner %s (lost JIT response)", orphan.id)
                await self.remove_runner(orphan.id)
            outcome = await self._jit_once(scale_set_id, name, work_folder)
        body = self._ok(outcome, not_found=ScaleSetNotFoundError)
        parsed = JitConfigResponse.from_bytes(body, outcome.operation)
        return JitConfigResult(
            name=name, config=parsed.encoded_jit_config.get_secret_value(), runner=parsed.runner
        )

    async def generate_jit_configs(
        self,
        scale_set_id: int,
        names: Sequence[str],
        *,
        concurrency: int = 32,
        work_folder: str = "",
    ) -> list[JitConfigResult]:
        """JIT configs for many runners with at most ``concurrency`` requests in flight.

        Returns one result per name, in order; a failed runner carries its typed ``error`` and
        never fails the batch.
        """
        by_name: defaultdict[str, list[JitConfigResult]] = defaultdict(list)
        async for arrived in self.stream_jit_configs(
            scale_set_id, names, concurrency=concurrency, work_folder=work_folder
        ):
            for result in arrived:
                by_name[result.name].append(result)
        # A name asked for twice gets both of its results (one of them "already exists").
        return [by_name[name].pop() for name in names]

    async def stream_jit_configs(
        self,
        scale_set_id: int,
        names: Sequence[str],
        *,
        concurrency: int = 32,
        work_folder: str = "",
    ) -> AsyncIterator[list[JitConfigResult]]:
        """Like :meth:`generate_jit_configs`, but yields results as they arrive.

        Each step yields every result that arrived since the previous step, so a caller that
        launches runners in between gets ever larger batches while the requests keep flowing.
        Closing the iterator early cancels the requests still in flight.
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        gate = asyncio.Semaphore(concurrency)
        # A bug (anything but an API error) travels through the queue to be raised here.
        arrived: asyncio.Queue[JitConfigResult | Exception] = asyncio.Queue()

        async def one(name: str) -> None:
            async with gate:
                try:
                    result: JitConfigResult | Exception = await self.generate_jit_config(
                        scale_set_id, name, work_folder=work_folder
                    )
                except ScaleSetError as exc:
                    result = JitConfigResult(name=name, error=exc)
                except Exception as exc:
                    result = exc
            arrived.put_nowait(result)

        tasks = [asyncio.create_task(one(name)) for name in names]
        try:
            remaining = len(names)
            while remaining:
                batch = [await arrived.get()]
                while not arrived.empty():
                    batch.append(arrived.get_nowait())
                remaining -= len(batch)
                for item in batch:
                    if isinstance(item, Exception):
                        raise item
                yield [item for item in batch if isinstance(item, JitConfigResult)]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- runners ----------------------------------------------------------------------------

    async def get_runner(self, runner_id: int) -> RunnerReference:
        """The runner ``runner_id`` (raises :class:`RunnerNotFoundError`)."""
        outcome = await self._admin("GET", f"{AGENTS}/{runner_id}", f"{AGENTS}/{{runnerId}}")
        body = self._ok(outcome, not_found=RunnerNotFoundError)
        return RunnerReference.from_bytes(body, outcome.operation)

    async def get_runner_by_name(self, name: str) -> RunnerReference | None:
        """The runner called ``name``, or ``None``."""
        outcome = await self._admin("GET", AGENTS, AGENTS, query={"agentName": name})
        page = Page[RunnerReference].from_bytes(self._ok(outcome), outcome.operation)
        return page.single(f"runners named {name!r}")

    async def remove_runner(self, runner_id: int) -> None:
        """Unregister a runner (raises :class:`JobStillRunningError` while it runs a job)."""
        outcome = await self._admin("DELETE", f"{AGENTS}/{runner_id}", f"{AGENTS}/{{runnerId}}")
        if outcome.status == 404 and outcome.ambiguous:
            return
        self._ok(outcome, not_found=RunnerNotFoundError)
