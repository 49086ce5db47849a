"""Parsing of the GitHub config URL (enterprise, organization or repository) into API endpoints."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from gha_scalesets.scaleset.errors import ConfigUrlError

_HOSTED = frozenset({"github.com", "www.github.com", "github.localhost"})
FORCE_GHES_ENV = "GITHUB_ACTIONS_FORCE_GHES"


class Scope(StrEnum):
    """What a config URL points to."""

    ENTERPRISE = "enterprise"
    ORGANIZATION = "organization"
    REPOSITORY = "repository"


@dataclass(frozen=True)
class ConfigUrl:
    """A parsed config URL.

    ``url`` is the config URL after the slash trim (what runner-registration receives);
    ``api_base`` is the REST API root without a trailing slash.
    """

    url: str
    scheme: str
    host: str
    scope: Scope
    enterprise: str | None
    organization: str | None
    repository: str | None
    is_hosted: bool

    @property
    def api_base(self) -> str:
        if self.is_hosted:
            host = "github.com" if self.host.lower() == "www.github.com" else self.host
            return f"{self.scheme}://api.{host}"
        return f"{self.scheme}://{self.host}/api/v3"

    @property
    def registration_token_path(self) -> str:
        """REST path (relative to ``api_base``) that mints a runner registration token."""
        if self.scope is Scope.ENTERPRISE:
            return f"enterprises/{self.enterprise}/actions/runners/registration-token"
        if self.scope is Scope.ORGANIZATION:
            return f"orgs/{self.organization}/actions/runners/registration-token"
        return f"repos/{self.organization}/{self.repository}/actions/runners/registration-token"

    @property
    def registration_token_route(self) -> str:
        """Route template of :attr:`registration_token_path`, for metrics and messages."""
        return {
            Scope.ENTERPRISE: "enterprises/{enterprise}/actions/runners/registration-token",
            Scope.ORGANIZATION: "orgs/{org}/actions/runners/registration-token",
            Scope.REPOSITORY: "repos/{owner}/{repo}/actions/runners/registration-token",
        }[self.scope]

    def __str__(self) -> str:
        return self.url


def _is_hosted(host: str) -> bool:
    if FORCE_GHES_ENV in os.environ:
        return False
    host = host.lower()
    return host in _HOSTED or host.endswith(".ghe.com")


def _redacted(url: str) -> str:
    """The URL with any embedded user info masked, safe for error messages."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    return f"{scheme}{sep}{netloc}{slash}{path}" if sep else url.split("@")[-1]


def parse_config_url(url: str) -> ConfigUrl:
    """Parse a config URL such as ``https://github.com/acme`` or ``https://ghes.example/acme/app``.

    Raises :class:`ConfigUrlError` with the offending URL when it is not an http(s) URL of an
    enterprise (``/enterprises/<slug>``), an organization (``/<org>``) or a repository
    (``/<owner>/<repo>``).
    """
    trimmed = url.strip().strip("/")
    shown = repr(_redacted(trimmed))
    try:
        parts = urlsplit(trimmed)
        host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:
        raise ConfigUrlError(f"invalid config URL {shown}: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigUrlError(
            f"invalid config URL {shown}: expected an http(s) URL such as https://github.com/<org>"
        )
    if parts.username or parts.password:
        raise ConfigUrlError("invalid config URL: credentials must not be embedded in the URL")
    if parts.query or parts.fragment:
        raise ConfigUrlError(f"invalid config URL {shown}: remove the query string or fragment")
    segments = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    enterprise = organization = repository = None
    if len(segments) == 1:
        scope, organization = Scope.ORGANIZATION, segments[0]
    elif len(segments) == 2 and segments[0].lower() == "enterprises":
        scope, enterprise = Scope.ENTERPRISE, segments[1]
    elif len(segments) == 2:
        scope, (organization, repository) = Scope.REPOSITORY, segments
    else:
        raise ConfigUrlError(
            f"invalid config URL {shown}, should point to an enterprise "
            "(https://HOST/enterprises/<slug>), org (https://HOST/<org>), "
            "or repository (https://HOST/<owner>/<repo>)"
        )
    netloc = f"{host}:{port}" if port else host
    return ConfigUrl(
        url=trimmed,
        scheme=parts.scheme,
        host=netloc,
        scope=scope,
        enterprise=enterprise,
        organization=organization,
        repository=repository,
        is_hosted=_is_hosted(host),
    )
