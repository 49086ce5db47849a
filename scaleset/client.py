"""The async client of the runner scale-set API."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Self

import httpx

from scaleset import pool
from scaleset.auth import AdminConnection, AuthChain, TokenCache, default_token_cache
from scaleset.cache import ReadCache
from scaleset.config_url import ConfigUrl, Scope, parse_config_url
from scaleset.conventions import (
    JSON,
    MQ_ACCEPT,
    admin_url,
    json_body,
    message_delete_url,
    message_url,
    user_agent,
)
from scaleset.credentials import AppCredentials, Credentials
from scaleset.errors import (
    ApiError,
    ConflictError,
    CredentialsError,
    MessageQueueTokenExpiredError,
    NotFoundError,
    ProtocolError,
    RunnerExistsError,
    RunnerGroupNotFoundError,
    RunnerNotFoundError,
    ScaleSetError,
    ScaleSetNotFoundError,
    SessionNotFoundError,
)
from scaleset.messages import ScaleSetMessage, parse_message
from scaleset.models import (
    JitConfigResponse,
    JitConfigResult,
    Label,
    MessageSession,
    Page,
    RunnerGroup,
    RunnerReference,
    ScaleSet,
)
from scaleset.pool import PoolSettings
from scaleset.retry import RetryPolicy
from scaleset.transport import Observer, Outcome, Request, Transport
from scaleset.wire import GO_ZERO_TIME

log = logging.getLogger("scaleset")

SCALE_SETS = "_apis/runtime/runnerscalesets"
AGENTS = "_apis/distributedtask/pools/0/agents"
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
UNLIMITED_CAPACITY = 2**31 - 1


def _labels(labels: Sequence[str | Label]) -> list[dict[str, str]]:
    return [
        (label if isinstance(label, Label) else Label(name=label)).to_wire() for label in labels
    ]


def _scale_set_body(fields: dict[str, Any], disable_update: bool | None) -> bytes:
    """Create/update body; ``RunnerSetting`` and ``createdOn`` are always sent (reference §4.2)."""
    setting = {} if disable_update is None else {"disableUpdate": disable_update}
    body = {k: v for k, v in fields.items() if v not in (None, "", 0, [])}
    body["RunnerSetting"] = setting
    body["createdOn"] = GO_ZERO_TIME.isoformat().replace("+00:00", "Z")
    return json_body(body)


class Client:
    """Async client for one GitHub config URL (enterprise, org or repository).

    Every Client of the process shares the token cache and, per event loop, one tuned HTTP pool;
    admin calls run concurrently (no global mutex). Use as ``async with Client(...) as c:`` or
    call :meth:`aclose`.
    """

    def __init__(
        self,
        config_url: str | ConfigUrl,
        credentials: Credentials,
        *,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        cache_ttl: float | None = None,
        user_agent_extra: dict[str, Any] | None = None,
        observer: Observer | None = None,
        timeout: float = 30.0,
        long_poll_timeout: float = 90.0,
        pool_settings: PoolSettings | None = None,
        token_cache: TokenCache | None = None,
    ) -> None:
        self.config = (
            config_url if isinstance(config_url, ConfigUrl) else parse_config_url(config_url)
        )
        if isinstance(credentials, AppCredentials) and self.config.scope is Scope.ENTERPRISE:
            raise CredentialsError(
                f"GitHub Apps cannot manage enterprise runners ({self.config.url}); use a PAT "
                "with manage_runners:enterprise"
            )
        self._http = http
        self._leased = False
        self._closed = False
        self._pool_settings = pool_settings or PoolSettings()
        self._transport = Transport(retry or RetryPolicy(), observer)
        self._user_agent = user_agent(user_agent_extra)
        self._cache = ReadCache(cache_ttl) if cache_ttl else None
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        # The service holds a long poll ~50 s: the read timeout must outlast it.
        self._poll_timeout = httpx.Timeout(long_poll_timeout, connect=min(timeout, 10.0))
        self._auth = AuthChain(
            self.config,
            credentials,
            token_cache or default_token_cache(),
            self._send,
            self._user_agent,
        )

    def __repr__(self) -> str:
        return f"Client({self.config.url!r}, {type(self._auth.credentials).__name__})"

    @property
    def auth_chain_runs(self) -> int:
        """How many times the admin token was acquired for this config URL and credential."""
        return self._auth.chain_runs

    @property
    def cache_hits(self) -> int:
        """Reads served from the TTL cache (0 when the cache is off)."""
        return self._cache.hits if self._cache else 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release the shared HTTP pool (a caller-supplied ``http`` client is left open)."""
        self._closed = True
        if self._leased and self._http is not None:
            self._leased = False
            await pool.release(self._http)
            self._http = None

    # -- plumbing ---------------------------------------------------------------------------

    async def _send(self, request: Request) -> Outcome:
        if self._closed:
            raise ScaleSetError("this scaleset Client is closed; create a new one")
        if self._http is None:
            self._http = pool.lease(self._pool_settings)
            self._leased = True
        request.timeout = request.timeout or self._timeout
        return await self._transport.send(self._http, request)

    async def _admin(
        self,
        method: str,
        path: str,
        route: str,
        *,
        query: dict[str, Any] | None = None,
        body: bytes | None = None,
    ) -> Outcome:
        """An admin-API call. A 401 (token revoked or expired early) renews it and retries once."""

        async def attempt() -> tuple[AdminConnection, Outcome]:
            connection = await self._auth.admin()
            headers = {
                "Content-Type": JSON,
                "Authorization": f"Bearer {connection.token.secret}",
                "User-Agent": self._user_agent,
            }
            url = admin_url(connection.base_url, path, query)
            return connection, await self._send(Request(method, url, route, headers, body))

        connection, outcome = await attempt()
        if outcome.status != 401:
            return outcome
        log.info("scaleset admin token rejected on %s; renewing it", outcome.operation)
        self._auth.invalidate(connection)
        _, retried = await attempt()
        retried.ambiguous = retried.ambiguous or outcome.ambiguous
        return retried

    @staticmethod
    def _ok(outcome: Outcome, *, not_found: type[ApiError] | None = None) -> bytes:
        """The body of a 2xx outcome; otherwise raise its typed error.

        ``not_found`` names the error of a 404 the service did not type more precisely.
        """
        if outcome.ok:
            return outcome.response.content
        error = outcome.error()
        if not_found is not None and type(error) is NotFoundError:
            error = outcome.error(not_found)
        raise error

    async def _cached(self, key: tuple[Any, ...], load: Callable[[], Awaitable[Any]]) -> Any:
        return await self._cache.get(key, load) if self._cache else await load()

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

    async def get_scale_set(self, scale_set_id: int) -> ScaleSet:
        """The scale set ``scale_set_id`` (raises :class:`ScaleSetNotFoundError`)."""

        async def load() -> ScaleSet:
            outcome = await self._admin(
                "GET", f"{SCALE_SETS}/{scale_set_id}", f"{SCALE_SETS}/{{scaleSetId}}"
            )
            body = self._ok(outcome, not_found=ScaleSetNotFoundError)
            return ScaleSet.from_bytes(body, outcome.operation)

        return await self._cached(("scale_set", scale_set_id), load)

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
        """Partially update a scale set; only the given fields change."""
        body = _scale_set_body(
            {
                "name": name,
                "runnerGroupId": runner_group_id,
                "labels": None if labels is None else _labels(labels),
            },
            disable_update,
        )
        path = f"{SCALE_SETS}/{scale_set_id}"
        outcome = await self._admin("PATCH", path, f"{SCALE_SETS}/{{scaleSetId}}", body=body)
        if self._cache:
            self._cache.invalidate("scale_set")
        return ScaleSet.from_bytes(
            self._ok(outcome, not_found=ScaleSetNotFoundError), outcome.operation
        )

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
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        gate = asyncio.Semaphore(concurrency)

        async def one(name: str) -> JitConfigResult:
            async with gate:
                try:
                    return await self.generate_jit_config(
                        scale_set_id, name, work_folder=work_folder
                    )
                except ScaleSetError as exc:
                    return JitConfigResult(name=name, error=exc)

        return list(await asyncio.gather(*(one(name) for name in names)))

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

    # -- message sessions -------------------------------------------------------------------

    def _session(
        self, outcome: Outcome, scale_set_id: int, not_found: type[ApiError]
    ) -> MessageSession:
        session = MessageSession.from_bytes(
            self._ok(outcome, not_found=not_found), outcome.operation
        )
        session._scale_set_id = scale_set_id
        return session

    async def create_message_session(
        self, scale_set_id: int, owner: str | None = None
    ) -> MessageSession:
        """Open the scale set's message session (raises :class:`SessionConflictError` if taken)."""
        owner = owner or socket.gethostname()
        outcome = await self._admin(
            "POST",
            f"{SCALE_SETS}/{scale_set_id}/sessions",
            f"{SCALE_SETS}/{{scaleSetId}}/sessions",
            body=json_body({"ownerName": owner, "sessionId": ZERO_UUID}),
        )
        session = self._session(outcome, scale_set_id, ScaleSetNotFoundError)
        if not session.message_queue_url:
            # Seen during a GitHub outage. Free the scale set so the next attempt is not a 409.
            await self.delete_message_session(session)
            raise ProtocolError(
                f"the service opened a session on scale set {scale_set_id} without a message "
                "queue URL (a known outage symptom); retry later"
            )
        return session

    def _session_path(self, session: MessageSession) -> tuple[str, str]:
        return (
            f"{SCALE_SETS}/{session.scale_set_id}/sessions/{session.session_id}",
            f"{SCALE_SETS}/{{scaleSetId}}/sessions/{{sessionId}}",
        )

    async def refresh_message_session(self, session: MessageSession) -> MessageSession:
        """Renew the session's message-queue token; ``session`` itself is updated and returned."""
        path, route = self._session_path(session)
        outcome = await self._admin("PATCH", path, route)
        fresh = self._session(outcome, session.scale_set_id, SessionNotFoundError)
        if not fresh.message_queue_url:
            raise ProtocolError("the refreshed session has no message queue URL; retry later")
        session.replace_with(fresh)
        return session

    async def delete_message_session(self, session: MessageSession) -> None:
        """Close the session so another listener can open one."""
        path, route = self._session_path(session)
        outcome = await self._admin("DELETE", path, route)
        if outcome.status == 404 and outcome.ambiguous:
            return
        self._ok(outcome, not_found=SessionNotFoundError)

    async def _with_queue_token(
        self, session: MessageSession, build: Callable[[str], Awaitable[Request]]
    ) -> Outcome:
        """Send a message-queue-token call; on 401 refresh the session once and resend."""
        token = session.message_queue_access_token.get_secret_value()
        outcome = await self._send(await build(token))
        if outcome.status != 401:
            return outcome
        if session._refresh_lock is None:
            session._refresh_lock = asyncio.Lock()
        async with session._refresh_lock:
            # Concurrent callers share one refresh: only the first still sees the stale token.
            if session.message_queue_access_token.get_secret_value() == token:
                await self.refresh_message_session(session)
        retried = await self._send(
            await build(session.message_queue_access_token.get_secret_value())
        )
        retried.ambiguous = retried.ambiguous or outcome.ambiguous
        return retried

    def _queue_headers(self, token: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "User-Agent": self._user_agent, **extra}

    async def get_message(
        self,
        session: MessageSession,
        last_message_id: int = 0,
        max_capacity: int = UNLIMITED_CAPACITY,
    ) -> ScaleSetMessage | None:
        """Long-poll the next message after ``last_message_id``; ``None`` when none came (202).

        ``max_capacity`` tells the service how many more runners this listener can start.
        """

        async def build(token: str) -> Request:
            headers = self._queue_headers(
                token, Accept=MQ_ACCEPT, **{"X-ScaleSetMaxCapacity": str(max(0, max_capacity))}
            )
            url = message_url(session.message_queue_url, last_message_id)
            return Request("GET", url, "{messageQueueUrl}", headers, timeout=self._poll_timeout)

        outcome = await self._with_queue_token(session, build)
        if outcome.status == 202:
            return None
        if outcome.status == 401:
            raise outcome.error(MessageQueueTokenExpiredError)
        return parse_message(self._ok(outcome))

    async def delete_message(self, session: MessageSession, message_id: int) -> None:
        """Acknowledge (delete) a message so it is not redelivered."""

        async def build(token: str) -> Request:
            url = message_delete_url(session.message_queue_url, message_id)
            headers = self._queue_headers(token, **{"Content-Type": JSON})
            return Request("DELETE", url, "{messageQueueUrl}/{messageId}", headers)

        outcome = await self._with_queue_token(session, build)
        if outcome.status == 404 and outcome.ambiguous:
            return
        if outcome.status == 401:
            raise outcome.error(MessageQueueTokenExpiredError)
        self._ok(outcome)

    async def acquire_jobs(
        self, session: MessageSession, scale_set_id: int, request_ids: Sequence[int]
    ) -> list[int]:
        """Acquire offered jobs (GHES ``JobAvailable``); returns the ids actually acquired."""
        if not request_ids:
            return []

        async def build(token: str) -> Request:
            connection = await self._auth.admin()
            url = admin_url(connection.base_url, f"{SCALE_SETS}/{scale_set_id}/acquirejobs")
            headers = self._queue_headers(token, **{"Content-Type": JSON})
            body = json_body(list(request_ids))
            return Request("POST", url, f"{SCALE_SETS}/{{scaleSetId}}/acquirejobs", headers, body)

        outcome = await self._with_queue_token(session, build)
        if outcome.status == 401:
            raise outcome.error(MessageQueueTokenExpiredError)
        page = Page[int].from_bytes(
            self._ok(outcome, not_found=ScaleSetNotFoundError), outcome.operation
        )
        return page.value
