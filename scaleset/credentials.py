"""Credentials for the first hop of the auth chain: a PAT or a GitHub App installation."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import SecretStr

from gha_scalesets.scaleset.errors import CredentialsError

# GitHub accepts App JWTs valid for at most 10 minutes; back-date for clock skew like upstream.
_JWT_BACKDATE = 60
_JWT_LIFETIME = 9 * 60


def _secret(value: str | SecretStr) -> SecretStr:
    return value if isinstance(value, SecretStr) else SecretStr(value)


@dataclass(frozen=True)
class PatCredentials:
    """A personal access token (classic scopes: repo / admin:org / manage_runners:enterprise).

    ``name`` labels it in metrics and logs (default ``pat:`` and a digest of the token).
    """

    token: SecretStr = field(repr=False)
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "token", _secret(self.token))
        if not self.token.get_secret_value().strip():
            raise CredentialsError("the personal access token is empty")

    @property
    def fingerprint(self) -> str:
        """A stable, non-reversible identifier used as a cache key."""
        return "pat:" + hashlib.sha256(self.token.get_secret_value().encode()).hexdigest()[:32]

    @property
    def label(self) -> str:
        """How metrics and logs name it: never the token."""
        return self.name or self.fingerprint[:12]


@dataclass(frozen=True)
class AppCredentials:
    """A GitHub App installation: client ID (or numeric App ID), installation ID and RSA PEM key.

    ``name`` labels it in metrics and logs (default ``app:<client ID>``).
    """

    client_id: str
    installation_id: int
    private_key_pem: SecretStr = field(repr=False)
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "client_id", str(self.client_id).strip())
        object.__setattr__(self, "private_key_pem", _secret(self.private_key_pem))
        try:
            object.__setattr__(self, "installation_id", int(self.installation_id))
        except (TypeError, ValueError):
            raise CredentialsError("the GitHub App installation ID must be an integer") from None
        if not self.client_id:
            raise CredentialsError("the GitHub App client ID is empty")
        self._load_key()

    def _load_key(self) -> RSAPrivateKey:
        try:
            key = load_pem_private_key(
                self.private_key_pem.get_secret_value().encode(), password=None
            )
        except (ValueError, TypeError):
            # The exception text may quote key material: never chain it.
            raise CredentialsError(
                f"the private key of GitHub App {self.client_id!r} is not a PEM-encoded, "
                "unencrypted RSA key (download a new one from the App's settings)"
            ) from None
        if not isinstance(key, RSAPrivateKey):
            raise CredentialsError(
                f"the private key of GitHub App {self.client_id!r} is not an RSA key"
            )
        return key

    @property
    def fingerprint(self) -> str:
        """A stable, non-reversible identifier used as a cache key."""
        digest = hashlib.sha256(self.private_key_pem.get_secret_value().encode()).hexdigest()[:32]
        return f"app:{self.client_id}:{self.installation_id}:{digest}"

    @property
    def label(self) -> str:
        """How metrics and logs name it (the client ID is not secret)."""
        return self.name or f"app:{self.client_id}"

    def app_jwt(self, now: float | None = None) -> str:
        """A short-lived RS256 JWT identifying the App (``iss`` = client ID)."""
        issued = int(now if now is not None else time.time()) - _JWT_BACKDATE
        claims = {"iat": issued, "exp": issued + _JWT_LIFETIME, "iss": self.client_id}
        return jwt.encode(claims, self._load_key(), algorithm="RS256")


Credentials = PatCredentials | AppCredentials
