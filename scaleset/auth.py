"""The auth chain (App JWT -> installation token -> registration token -> admin token) and its
process-wide cache.

Unlike upstream, every link is cached until shortly before its own expiry, so an admin-token
refresh usually costs one request (runner-registration) instead of three, and concurrent callers
on a cold cache wait for a single run of the chain.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt
from pydantic import SecretStr

from gha_scalesets.scaleset.config_url import ConfigUrl
from gha_scalesets.scaleset.conventions import UserAgent, json_body
from gha_scalesets.scaleset.credentials import AppCredentials, Credentials
from gha_scalesets.scaleset.errors import ForbiddenError, ProtocolError, UnauthorizedError
from gha_scalesets.scaleset.singleflight import SingleFlight
from gha_scalesets.scaleset.transport import Outcome, Request
from gha_scalesets.scaleset.wire import decode_json

# Refresh this long before expiry (capped at a fifth of the lifetime so short-lived tokens, as in
# tests against the simulator, are still reused).
_REFRESH_MARGIN = 60.0
_MARGIN_FRACTION = 0.2

Send = Callable[[Request], Awaitable[Outcome]]


@dataclass(frozen=True)
class Token:
    """A bearer credential with its expiry (epoch seconds)."""

    value: SecretStr = field(repr=False)
    expires_at: float
    issued_at: float

    def usable(self, now: float) -> bool:
        lifetime = max(0.0, self.expires_at - self.issued_at)
        return now < self.expires_at - min(_REFRESH_MARGIN, lifetime * _MARGIN_FRACTION)

    @property
    def secret(self) -> str:
        return self.value.get_secret_value()


@dataclass(frozen=True)
class AdminConnection:
    """Where and how to call the Actions service admin API."""

    base_url: str
    token: Token


@dataclass
class _Entry:
    registration: Token | None = None
    admin: AdminConnection | None = None
    chain_runs: int = 0
    # Keyed by event loop: clients on several loops (threads) share tokens, not futures.
    flights: SingleFlight[AdminConnection] = field(default_factory=SingleFlight)


class TokenCache:
    """Tokens per (config URL, credential fingerprint); installation tokens per (API, App)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._installations: dict[tuple[str, str], Token] = {}
        self._guard = threading.Lock()

    def entry(self, key: tuple[str, str]) -> _Entry:
        with self._guard:
            return self._entries.setdefault(key, _Entry())

    def chain_runs(self, key: tuple[str, str]) -> int:
        """How many times the admin token was (re)acquired for ``key``."""
        entry = self._entries.get(key)
        return entry.chain_runs if entry else 0

    def installation(self, key: tuple[str, str]) -> Token | None:
        token = self._installations.get(key)
        return token if token is not None and token.usable(self.clock()) else None

    def store_installation(self, key: tuple[str, str], token: Token) -> None:
        self._installations[key] = token

    def clear(self) -> None:
        """Forget every token (e.g. after rotating credentials)."""
        with self._guard:
            self._entries.clear()
            self._installations.clear()


_default_cache: TokenCache | None = None


def default_token_cache() -> TokenCache:
    """The cache shared by every Client of the process (created on first use)."""
    global _default_cache
    if _default_cache is None:
        _default_cache = TokenCache()
    return _default_cache


def _rfc3339(value: Any, fallback: float) -> float:
    if not isinstance(value, str) or not value:
        return fallback
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return fallback


class AuthChain:
    """Runs the auth chain for one (config URL, credentials) pair against a shared cache."""

    def __init__(
        self,
        config: ConfigUrl,
        credentials: Credentials,
        cache: TokenCache,
        send: Send,
        user_agent: UserAgent,
    ) -> None:
        self.config = config
        self.credentials = credentials
        self.cache = cache
        self._send = send
        self._user_agent = user_agent
        self.key = (config.url.lower(), credentials.fingerprint)

    @property
    def chain_runs(self) -> int:
        return self.cache.chain_runs(self.key)

    async def admin(self) -> AdminConnection:
        """A usable admin connection; concurrent callers share one run of the chain."""
        entry = self.cache.entry(self.key)
        if entry.admin is not None and entry.admin.token.usable(self.cache.clock()):
            return entry.admin

        async def renew() -> AdminConnection:
            entry.chain_runs += 1
            entry.admin = await self._runner_registration(entry)
            return entry.admin

        return await entry.flights.run(asyncio.get_running_loop(), renew)

    def invalidate(self, rejected: AdminConnection) -> None:
        """Drop an admin token the service rejected (unless another caller already replaced it)."""
        entry = self.cache.entry(self.key)
        if entry.admin is rejected:
            entry.admin = None

    async def _post(self, path: str, route: str, authorization: str, **kw: Any) -> Outcome:
        headers = {"Authorization": authorization, "User-Agent": str(self._user_agent)}
        headers.update(kw.pop("headers", {}))
        return await self._send(
            Request("POST", f"{self.config.api_base}/{path}", route, headers, **kw)
        )

    @staticmethod
    def _check(
        outcome: Outcome, route: str, accept: Container[int], required: tuple[str, ...] = ("token",)
    ) -> dict[str, Any]:
        """The decoded body of a successful response carrying ``required`` keys, else the error."""
        operation = f"POST {route}"
        if outcome.status not in accept:
            raise outcome.error()
        body = decode_json(outcome.response.content, operation)
        if not isinstance(body, dict) or not all(body.get(k) for k in required):
            raise ProtocolError(f"{operation}: the response lacks {' or '.join(required)}")
        return body

    async def _installation_token(self, app: AppCredentials, *, reuse: bool) -> Token:
        key = (self.config.api_base, app.fingerprint)
        cached = self.cache.installation(key) if reuse else None
        if cached is not None:
            return cached
        route = "app/installations/{installation_id}/access_tokens"
        now = self.cache.clock()
        outcome = await self._post(
            f"app/installations/{app.installation_id}/access_tokens",
            route,
            f"Bearer {app.app_jwt(now)}",
            headers={"Content-Type": "application/vnd.github+json"},
        )
        body = self._check(outcome, route, (201,))
        token = Token(SecretStr(body["token"]), _rfc3339(body.get("expires_at"), now), now)
        self.cache.store_installation(key, token)
        return token

    async def _registration_token(self, entry: _Entry, *, reuse: bool) -> tuple[Token, bool]:
        """A registration token and whether it came from the cache."""
        now = self.cache.clock()
        if reuse and entry.registration is not None and entry.registration.usable(now):
            return entry.registration, True
        route = self.config.registration_token_route
        if isinstance(self.credentials, AppCredentials):
            installation = await self._installation_token(self.credentials, reuse=True)
            outcome = await self._registration_request(route, installation.secret)
            if outcome.status == 401:  # the cached installation token was revoked: mint a new one
                installation = await self._installation_token(self.credentials, reuse=False)
                outcome = await self._registration_request(route, installation.secret)
        else:
            outcome = await self._registration_request(
                route, self.credentials.token.get_secret_value()
            )
        body = self._check(outcome, route, (201,))
        entry.registration = Token(
            SecretStr(body["token"]), _rfc3339(body.get("expires_at"), now), now
        )
        return entry.registration, False

    async def _registration_request(self, route: str, bearer: str) -> Outcome:
        return await self._post(
            self.config.registration_token_path,
            route,
            f"Bearer {bearer}",
            headers={"Content-Type": "application/vnd.github.v3+json"},
        )

    async def _runner_registration(self, entry: _Entry) -> AdminConnection:
        registration, cached = await self._registration_token(entry, reuse=True)
        try:
            return await self._register(registration, retry_auth=not cached)
        except (UnauthorizedError, ForbiddenError):
            if not cached:
                raise
        # A cached registration token was refused: mint a fresh one once.
        registration, _ = await self._registration_token(entry, reuse=False)
        return await self._register(registration, retry_auth=True)

    async def _register(self, registration: Token, *, retry_auth: bool) -> AdminConnection:
        route = "actions/runner-registration"
        outcome = await self._post(
            route,
            route,
            f"RemoteAuth {registration.secret}",
            headers={"Content-Type": "application/json"},
            content=json_body({"url": self.config.url, "runner_event": "register"}, newline=True),
            # Freshly minted registration tokens are sometimes not valid yet (ARC PR #3377).
            retry_statuses=frozenset({401, 403}) if retry_auth else frozenset(),
        )
        body = self._check(outcome, route, range(200, 300), ("url", "token"))
        return AdminConnection(
            str(body["url"]), _admin_token(str(body["token"]), self.cache.clock())
        )


def _admin_token(value: str, now: float) -> Token:
    """Read the expiry from the admin JWT without verifying it, as upstream does."""
    try:
        claims = jwt.decode(value, options={"verify_signature": False})
        expires_at = float(claims["exp"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        raise ProtocolError(
            "POST actions/runner-registration: the admin token is not a JWT with an 'exp' claim"
        ) from None
    return Token(SecretStr(value), expires_at, now)
