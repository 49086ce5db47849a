"""The credential chain: App JWT -> installation token; PAT; registration token -> admin token.

Also mints the message-queue tokens of sessions. Admin and message-queue tokens are JWTs
(HS256, a per-simulator secret) with an ``exp`` claim, because clients read ``exp`` to decide
when to refresh. All expiry checks use the simulator :class:`~simulator.clock.Clock`.
Failures raise :class:`~simulator.errors.ApiError`s with GitHub-like messages; no token ever
appears in a message.

Every token remembers the credential it came from (a PAT or an App, named as in
:mod:`simulator.limits`): rate limits are counted per credential, and a revoked credential
takes its registration and admin tokens with it. A session's queue token keeps working: it
belongs to the session, not to the credential.
"""

from __future__ import annotations

import random
import string
from typing import Any

import jwt
import jwt.types

from gha_scalesets.simulator.clock import Clock
from gha_scalesets.simulator.config import AppCredential, SimulatorConfig
from gha_scalesets.simulator.errors import UNAUTHORIZED, PlainError, RestError, VssError
from gha_scalesets.simulator.ledger import SecretLedger
from gha_scalesets.simulator.limits import app_credential, pat_credential
from gha_scalesets.simulator.model import Scope

APP_JWT_SKEW_SECONDS = 60
APP_JWT_MAX_LIFETIME_SECONDS = 600
_ISSUER = "gha-scalesets-simulator"
_ALNUM = string.ascii_letters + string.digits
# pyjwt checks times against the real clock; the simulator clock may be advanced, so time
# claims are checked by hand against it
_CLOCK_CHECKS_OFF: jwt.types.Options = {
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
}


class Authority:
    """Issues and verifies every token of one simulator world."""

    def __init__(
        self, config: SimulatorConfig, clock: Clock, rng: random.Random, ledger: SecretLedger
    ) -> None:
        self._config = config
        self._ledger = ledger
        self._clock = clock
        self._rng = rng
        self._apps = {app.client_id: app for app in config.apps}
        self._pats = frozenset(config.pats)
        self._unscoped_pats = frozenset(config.unscoped_pats)
        self._pat_ids = {pat: pat_credential(pat) for pat in self._pats | self._unscoped_pats}
        # token -> (expiry, credential id)
        self._installation_tokens: dict[str, tuple[float, str]] = {}
        self._registration_tokens: dict[str, tuple[Scope, float, str]] = {}
        self._revoked: set[str] = set()
        self._secret = rng.randbytes(64)

    # -- credentials -----------------------------------------------------------------------

    def known_credentials(self) -> set[str]:
        return set(self._pat_ids.values()) | {app_credential(a) for a in self._apps}

    def revoke(self, credential: str) -> None:
        """Revoke a PAT or an App: it and every token derived from it answer 401 from now on
        (queue tokens excepted: they belong to their session)."""
        if credential not in self.known_credentials():
            raise PlainError(404, f"no credential {credential!r}; see /_sim/stats 'limits'")
        self._revoked.add(credential)

    @property
    def revoked(self) -> list[str]:
        return sorted(self._revoked)

    def _check_not_revoked(self, credential: str) -> None:
        if credential in self._revoked:
            raise RestError(401, "Bad credentials: the credential was revoked (simulated)")

    def identify(self, authorization: str) -> str | None:
        """The credential behind an ``Authorization`` header (``None``: none we know)."""
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() == "remoteauth":
            registration = self._registration_tokens.get(token)
            return registration[2] if registration else None
        if token in self._pat_ids:
            return self._pat_ids[token]
        if token in self._installation_tokens:
            return self._installation_tokens[token][1]
        claims = self._claims(token)
        if claims is not None:
            return claims.get("cid")
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            return None
        return app_credential(issuer) if issuer in self._apps else None

    # -- GitHub App ------------------------------------------------------------------------

    def verify_app_jwt(self, token: str) -> AppCredential:
        """Check an App JWT: RS256, known ``iss``, valid signature, sane ``iat``/``exp``."""
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise RestError(401, "A JSON web token could not be decoded") from None
        if header.get("alg") != "RS256":
            raise RestError(401, "The JWT must be signed with RS256")
        app = self._apps.get(str(claims.get("iss", "")))
        if app is None:
            raise RestError(401, "'Issuer' claim ('iss') does not name a known GitHub App")
        self._check_not_revoked(app_credential(app.client_id))
        try:
            jwt.decode(
                token,
                app.public_key,
                algorithms=["RS256"],
                options=_CLOCK_CHECKS_OFF,
            )
        except jwt.PyJWTError:
            raise RestError(401, "The JWT signature does not match the App's public key") from None
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise RestError(401, "'iat' and 'exp' claims must be integer NumericDates")
        now = self._clock.now()
        if iat > now + APP_JWT_SKEW_SECONDS:
            raise RestError(401, "'Issued at' claim ('iat') must be a time in the past")
        if exp <= now - APP_JWT_SKEW_SECONDS:
            raise RestError(401, "'Expiration time' claim ('exp') is in the past: JWT expired")
        if exp > now + APP_JWT_MAX_LIFETIME_SECONDS + APP_JWT_SKEW_SECONDS:
            raise RestError(401, "'Expiration time' claim ('exp') is too far in the future")
        return app

    def issue_installation_token(self, app: AppCredential) -> tuple[str, float]:
        token = self._ledger.add("ghs_" + "".join(self._rng.choices(_ALNUM, k=36)))
        expires = self._clock.now() + self._config.installation_token_ttl_seconds
        self._installation_tokens[token] = (expires, app_credential(app.client_id))
        return token, expires

    # -- REST credentials and registration tokens ------------------------------------------

    def check_rest_credential(self, token: str, scope: Scope) -> str:
        """A PAT or an unexpired installation token (its credential id); Apps cannot act on
        enterprises."""
        credential = self._pat_ids.get(token)
        if credential is not None:
            self._check_not_revoked(credential)
            if token in self._unscoped_pats:
                raise RestError(403, "Resource not accessible by personal access token")
            return credential
        installation = self._installation_tokens.get(token)
        if installation is None or installation[0] <= self._clock.now():
            raise RestError(401, "Bad credentials")
        self._check_not_revoked(installation[1])
        if scope.kind == "enterprise":
            raise RestError(403, "Resource not accessible by integration")
        return installation[1]

    def issue_registration_token(self, scope: Scope, credential: str) -> tuple[str, float]:
        alphabet = string.ascii_uppercase + string.digits
        token = self._ledger.add("".join(self._rng.choices(alphabet, k=29)))
        expires = self._clock.now() + self._config.registration_token_ttl_seconds
        self._registration_tokens[token] = (scope, expires, credential)
        return token, expires

    def verify_registration_token(self, token: str) -> tuple[Scope, str]:
        """The scope and credential of a registration token."""
        entry = self._registration_tokens.get(token)
        if entry is None or entry[1] <= self._clock.now():
            raise RestError(401, "Bad credentials: unknown or expired registration token")
        self._check_not_revoked(entry[2])
        return entry[0], entry[2]

    # -- Actions service tokens --------------------------------------------------------------

    def _mint(self, ttl: float, **claims: Any) -> str:
        now = self._clock.now()
        payload = {
            "iss": _ISSUER,
            "iat": int(now),
            "exp": int(now + ttl),
            "jti": self._rng.getrandbits(64).to_bytes(8).hex(),
            **claims,
        }
        return self._ledger.add(jwt.encode(payload, self._secret, algorithm="HS256"))

    def _claims(self, token: str) -> dict[str, Any] | None:
        """Verified claims of one of our tokens, or ``None`` if forged or expired."""
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=["HS256"], options=_CLOCK_CHECKS_OFF
            )
        except jwt.PyJWTError:
            return None
        if claims.get("iss") != _ISSUER or claims.get("exp", 0) <= self._clock.now():
            return None
        return claims

    def issue_admin_token(self, tenant_id: str, credential: str) -> str:
        return self._mint(self._config.admin_token_ttl_seconds, tid=tenant_id, cid=credential)

    def verify_admin_token(self, token: str, tenant_id: str) -> str:
        """The credential an admin token of ``tenant_id`` was issued to."""
        claims = self._claims(token)
        if claims is None or claims.get("tid") != tenant_id or claims.get("cid") in self._revoked:
            raise VssError(401, UNAUTHORIZED, "The admin token is invalid or expired.")
        return str(claims.get("cid"))

    def issue_mq_token(self, session_id: str, credential: str) -> str:
        return self._mint(self._config.mq_token_ttl_seconds, sid=session_id, cid=credential)

    def mq_token_session(self, token: str) -> str:
        """The session id a message-queue token was issued for (401 if invalid/expired)."""
        claims = self._claims(token)
        if claims is None or "sid" not in claims:
            raise PlainError(401, "The message queue token is invalid or expired.")
        return str(claims["sid"])
