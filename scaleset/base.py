"""Plumbing shared by every client method: pool lease, retries, admin auth, error mapping."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Self

import httpx

from gha_scalesets.scaleset import pool
from gha_scalesets.scaleset.auth import AdminConnection, AuthChain, TokenCache, default_token_cache
from gha_scalesets.scaleset.cache import ReadCache
from gha_scalesets.scaleset.config_url import ConfigUrl, Scope, parse_config_url
from gha_scalesets.scaleset.conventions import JSON, UserAgent, admin_url
from gha_scalesets.scaleset.credentials import AppCredentials, Credentials
from gha_scalesets.scaleset.errors import ApiError, CredentialsError, NotFoundError, ScaleSetError
from gha_scalesets.scaleset.network import NetworkSettings, ProxyRouter, ssl_context
from gha_scalesets.scaleset.pool import PoolSettings
from gha_scalesets.scaleset.retry import RetryPolicy
from gha_scalesets.scaleset.sharding import LaneStats
from gha_scalesets.scaleset.transport import Observer, Outcome, Request, Transport

log = logging.getLogger("scaleset")

SCALE_SETS = "_apis/runtime/runnerscalesets"


class BaseClient:
    """Construction, HTTP plumbing and admin-API auth behind :class:`~scaleset.Client`."""

    def __init__(
        self,
        config_url: str | ConfigUrl,
        credentials: Credentials,
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
        self._network = NetworkSettings(proxy=proxy, no_proxy=no_proxy, ca_bundle=ca_bundle)
        if http is None:
            # Bad proxy URLs or CA bundles fail here, not on the first request.
            ProxyRouter(self._network)
            if ca_bundle:
                ssl_context(self._network)
        self._transport = Transport(retry or RetryPolicy(), observer)
        self.user_agent = UserAgent(subsystem, user_agent_extra)
        self._cache = ReadCache(cache_ttl) if cache_ttl else None
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        # The service holds a long poll ~50 s: the read timeout must outlast it.
        self._poll_timeout = httpx.Timeout(long_poll_timeout, connect=min(timeout, 10.0))
        self._auth = AuthChain(
            self.config,
            credentials,
            token_cache or default_token_cache(),
            self._send,
            self.user_agent,
        )

    def __repr__(self) -> str:
        return f"Client({self.config.url!r}, {type(self._auth.credentials).__name__})"

    def identify(self, *scale_set_ids: int) -> None:
        """Put the scale set id(s) in the User-Agent of every later request."""
        self.user_agent.identify(*scale_set_ids)

    @property
    def auth_chain_runs(self) -> int:
        """How many times the admin token was acquired for this config URL and credential."""
        return self._auth.chain_runs

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
                "User-Agent": str(self.user_agent),
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
