"""Plumbing shared by every client method: pool lease, retries, pacing, admin auth, errors.

A client holds one or several credentials of one config URL, each with its own auth chain and
pacing (:mod:`scaleset.pacing`). An admin call goes to the credential with the most budget
left; a session, its refreshes and its queue stay on the credential that opened it while that
one is usable (GitHub ties a session to the scale set and its queue token to the session;
which credentials may refresh it is undocumented, so the client does not find out).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Self

import httpx

from gha_scalesets.scaleset import pool
from gha_scalesets.scaleset.auth import AdminConnection, AuthChain, TokenCache, default_token_cache
from gha_scalesets.scaleset.cache import M, ReadCache
from gha_scalesets.scaleset.config_url import ConfigUrl, Scope, parse_config_url
from gha_scalesets.scaleset.conventions import JSON, UserAgent, admin_url
from gha_scalesets.scaleset.credentials import AppCredentials, Credentials, PatCredentials
from gha_scalesets.scaleset.errors import (
    ApiError,
    CredentialsError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    ScaleSetError,
    UnauthorizedError,
)
from gha_scalesets.scaleset.network import NetworkSettings, ProxyRouter, ssl_context
from gha_scalesets.scaleset.pacing import CredentialPacer, Gate, Pacer, PacingSettings, route_class
from gha_scalesets.scaleset.pool import PoolSettings
from gha_scalesets.scaleset.retry import RetryPolicy
from gha_scalesets.scaleset.sharding import LaneStats
from gha_scalesets.scaleset.transport import Observer, Outcome, Request, Transport

log = logging.getLogger("scaleset")

SCALE_SETS = "_apis/runtime/runnerscalesets"
Pin = Callable[[], CredentialPacer]


class _CredentialUnavailable(Exception):
    """The auth chain of one credential failed: GitHub refused it, or it is rate limited."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(str(error))
        self.error = error


def _credential_list(credentials: Credentials | Sequence[Credentials]) -> list[Credentials]:
    given = (
        [credentials]
        if isinstance(credentials, PatCredentials | AppCredentials)
        else list(credentials)
    )
    if not given:
        raise CredentialsError("no credentials given: a PAT or a GitHub App is needed")
    for attribute in ("fingerprint", "label"):
        values = [getattr(c, attribute) for c in given]
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            names = ", ".join(c.label for c in given if getattr(c, attribute) in twice)
            raise CredentialsError(f"the credentials must be distinct: {names} given twice")
    return given


class BaseClient:
    """Construction, HTTP plumbing and admin-API auth behind :class:`~scaleset.Client`."""

    def __init__(
        self,
        config_url: str | ConfigUrl,
        credentials: Credentials | Sequence[Credentials],
        *,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        cache_ttl: float | None = None,
        subsystem: str = "client",
        user_agent_extra: dict[str, Any] | None = None,
        proxy: str | None = None,
        no_proxy: str | None = None,
        ca_bundle: str | None = None,
        observer: Observer | None = None,
        timeout: float = 30.0,
        long_poll_timeout: float = 90.0,
        pool_settings: PoolSettings | None = None,
        token_cache: TokenCache | None = None,
        pacing: PacingSettings | None = None,
    ) -> None:
        self.config = (
            config_url if isinstance(config_url, ConfigUrl) else parse_config_url(config_url)
        )
        given = _credential_list(credentials)
        if self.config.scope is Scope.ENTERPRISE and any(
            isinstance(c, AppCredentials) for c in given
        ):
            raise CredentialsError(
                f"GitHub Apps cannot manage enterprise runners ({self.config.url}); use a PAT "
                "with manage_runners:enterprise"
            )
        self._http = http
        self._leased = False
        self._closed = False
        self._pool_settings = pool_settings or PoolSettings()
        self._network = NetworkSettings(proxy=proxy, no_proxy=no_proxy, ca_bundle=ca_bundle)
        if http is None:
            # Bad proxy URLs or CA bundles fail here, not on the first request.
            ProxyRouter(self._network)
            if ca_bundle:
                ssl_context(self._network)
        retry = retry or RetryPolicy()
        self._transport = Transport(retry, observer)
        # The pacer waits on the retry policy's clock and sleep: one notion of time per client.
        self._pacer = Pacer(
            [c.label for c in given],
            pacing or PacingSettings(),
            clock=retry.clock,
            sleep=retry.sleep,
            max_wait=retry.max_server_wait,
        )
        self.user_agent = UserAgent(subsystem, user_agent_extra)
        self._cache = ReadCache(cache_ttl) if cache_ttl else None
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        # The service holds a long poll ~50 s: the read timeout must outlast it.
        self._poll_timeout = httpx.Timeout(long_poll_timeout, connect=min(timeout, 10.0))
        cache = token_cache or default_token_cache()
        self._chains = {
            c.label: AuthChain(
                self.config, c, cache, functools.partial(self._send_as, c.label), self.user_agent
            )
            for c in given
        }

    def __repr__(self) -> str:
        return f"Client({self.config.url!r}, {', '.join(self._chains)})"

    @property
    def credentials(self) -> list[str]:
        """The labels of the client's credentials (never their secrets)."""
        return list(self._chains)

    def pacing_snapshot(self) -> list[dict[str, Any]]:
        """Per credential: usable or set aside, and per route class its requests, refusals,
        blocks, window budget and the primary limit's remaining requests."""
        return self._pacer.snapshot()

    def identify(self, *scale_set_ids: int) -> None:
        """Put the scale set id(s) in the User-Agent of every later request."""
        self.user_agent.identify(*scale_set_ids)

    @property
    def auth_chain_runs(self) -> int:
        """How many times an admin token was acquired for this config URL (all credentials)."""
        return sum(chain.chain_runs for chain in self._chains.values())

    @property
    def pool_stats(self) -> Mapping[str, LaneStats]:
        """Per lane of the shared HTTP pool (``api``, ``long_poll``): connection budget, use
        and waits for a free connection; empty before the first request or with your ``http``."""
        return pool.lane_stats(self._http) if self._leased and self._http is not None else {}

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
            self._http = pool.lease(self._pool_settings, self._network)
            self._leased = True
        request.timeout = request.timeout or self._timeout
        return await self._transport.send(self._http, request)

    async def _send_as(self, label: str, request: Request) -> Outcome:
        """A request bound to one credential (its auth chain, or a session's queue)."""
        ticket = await self._pacer.acquire(route_class(request.route), self._pacer.lane(label))
        request.gate = gate = self._gate(ticket)
        try:
            return await self._send(request)
        finally:
            gate.close()

    def _gate(self, ticket: Any, *, switchable: bool = False) -> Gate:
        return Gate(
            self._pacer, ticket, switchable=switchable, wall_clock=self._transport.retry.clock
        )

    def _home(self, scale_set_id: int, current: str = "") -> CredentialPacer:
        """The credential a scale set's session lives on: ``current`` while it is usable, else
        a stable choice among the usable ones."""
        lane = self._pacer.lane(current)
        if lane is not None and lane.usable(self._transport.retry.clock()):
            return lane
        usable = self._pacer.usable()
        return usable[scale_set_id % len(usable)]

    def _set_aside(self, lane: CredentialPacer, error: ApiError) -> bool:
        """Take a credential out of rotation; whether another one is left to try."""
        now = self._transport.retry.clock()
        if isinstance(error, RateLimitedError):
            seconds = error.retry_after or self._pacer.settings.default_block_seconds
        else:
            seconds = self._pacer.settings.rejected_seconds
        lane.reject(now, seconds)
        others = [other for other in self._pacer.lanes if other.usable(now)]
        log.error(
            "scaleset credential %s unusable for %.0f s (%s): %s",
            lane.label,
            seconds,
            error,
            "its requests move to " + ", ".join(o.label for o in others) if others else "no other",
        )
        return bool(others)

    async def _admin(
        self,
        method: str,
        path: str,
        route: str,
        *,
        query: dict[str, Any] | None = None,
        body: bytes | None = None,
        pin: Pin | None = None,
    ) -> Outcome:
        """An admin-API call on the credential with the most budget left (``pin``: on the one
        it returns). A credential GitHub refuses, or one rate limited, hands the call to
        another one when there is one."""
        cls = route_class(route)
        several = len(self._pacer.lanes) > 1
        for reroutes in range(len(self._pacer.lanes) + self._transport.retry.max_attempts):
            ticket = await self._pacer.acquire(cls, pin() if pin else None)
            last_try = reroutes + 1 >= len(self._pacer.lanes) + self._transport.retry.max_attempts
            gate = self._gate(ticket, switchable=several and pin is None and not last_try)
            try:
                outcome = await self._admin_on(gate, method, path, route, query, body)
            except _CredentialUnavailable as unavailable:
                if not several or last_try or not self._set_aside(ticket.lane, unavailable.error):
                    raise unavailable.error from None
                continue
            finally:
                gate.close()
            if not (outcome.limited and gate.switchable):
                return outcome
        raise AssertionError("unreachable: the last try is never switchable")

    async def _admin_on(
        self,
        gate: Gate,
        method: str,
        path: str,
        route: str,
        query: dict[str, Any] | None,
        body: bytes | None,
    ) -> Outcome:
        """The call with one credential. A 401 (token revoked or expired early) renews its
        admin token and retries once."""
        chain = self._chains[gate.lane.label]

        async def attempt() -> tuple[AdminConnection, Outcome]:
            try:
                connection = await chain.admin()
            except (UnauthorizedError, ForbiddenError, RateLimitedError) as exc:
                raise _CredentialUnavailable(exc) from exc
            headers = {
                "Content-Type": JSON,
                "Authorization": f"Bearer {connection.token.secret}",
                "User-Agent": str(self.user_agent),
            }
            url = admin_url(connection.base_url, path, query)
            request = Request(method, url, route, headers, body, gate=gate)
            return connection, await self._send(request)

        connection, outcome = await attempt()
        if outcome.status != 401:
            return outcome
        log.info("scaleset admin token rejected on %s; renewing it", outcome.operation)
        chain.invalidate(connection)
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

    async def _cached(self, key: tuple[Any, ...], load: Callable[[], Awaitable[M]]) -> M:
        return await self._cache.get(key, load) if self._cache else await load()
