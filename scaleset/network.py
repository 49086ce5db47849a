"""How the client reaches GitHub on a corporate network: forward proxies and private root CAs.

The client's connection pool is built by hand (:mod:`scaleset.sharding`), so httpx's own handling
of ``HTTPS_PROXY``/``NO_PROXY`` never applies to it: this module decides, per request, whether
and through which proxy to connect, with the standard library's reading of the environment
(upper- and lowercase forms; lowercase wins, as for curl and Go).
"""

from __future__ import annotations

import os
import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import certifi

if TYPE_CHECKING:  # the provider's offline checks use this module without the HTTP stack
    import httpx

_PEM_MARKER = "-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class NetworkSettings:
    """Proxy and TLS trust of a client; hashable, so it keys the shared pool.

    - ``proxy``: a proxy URL for every scheme; it wins over ``HTTPS_PROXY``/``HTTP_PROXY``.
      May carry credentials (``http://user:pass@proxy:3128``): a secret, never logged.
    - ``no_proxy``: hosts reached directly (``NO_PROXY`` syntax); ``None`` reads ``NO_PROXY``.
    - ``ca_bundle``: extra root CAs, PEM text or the path of a PEM file (GHES with an internal
      CA); added to the default trust store, not replacing it.
    - ``trust_env``: read the proxy variables and ``SSL_CERT_FILE``/``SSL_CERT_DIR`` at all.
    """

    proxy: str | None = None
    no_proxy: str | None = None
    ca_bundle: str | None = None
    trust_env: bool = True

    def __repr__(self) -> str:  # the proxy URL may hold credentials
        proxy = redact_proxy(self.proxy) if self.proxy else None
        return f"NetworkSettings(proxy={proxy!r}, no_proxy={self.no_proxy!r}, ca=...)"


def redact_proxy(url: str) -> str:
    """``url`` without its password (for logs and error messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def ca_pem(ca_bundle: str) -> str:
    """The PEM text of a ``ca_bundle`` given as PEM text or as a file path."""
    if _PEM_MARKER in ca_bundle:
        return ca_bundle
    path = Path(ca_bundle).expanduser()
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"ca_bundle: cannot read {path}: {exc.strerror}") from None
    if _PEM_MARKER not in text:
        raise ValueError(f"ca_bundle: {path} holds no PEM certificate")
    return text


def _default_trust(trust_env: bool) -> ssl.SSLContext:
    """httpx's default trust store: ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` when the environment
    is trusted and sets one, else certifi's roots."""
    if trust_env and os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if trust_env and os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    return ssl.create_default_context(cafile=certifi.where())


def ssl_context(settings: NetworkSettings) -> ssl.SSLContext:
    """The default trust store (certifi, or ``SSL_CERT_FILE``) plus ``settings.ca_bundle``."""
    context = _default_trust(settings.trust_env)
    if settings.ca_bundle:
        try:
            context.load_verify_locations(cadata=ca_pem(settings.ca_bundle))
        except ssl.SSLError as exc:
            raise ValueError(f"ca_bundle: not a valid PEM certificate ({exc.reason})") from None
    return context


class ProxyRouter:
    """Which proxy, if any, a request goes through; decided once per (scheme, host, port)."""

    def __init__(self, settings: NetworkSettings) -> None:
        env = urllib.request.getproxies_environment() if settings.trust_env else {}
        if settings.proxy:
            self._proxies = {"http": settings.proxy, "https": settings.proxy}
        else:
            self._proxies = {k: v for k, v in env.items() if k in ("http", "https") and v}
        for proxy in self._proxies.values():
            if urlsplit(proxy).scheme not in ("http", "https"):
                raise ValueError(
                    f"proxy {redact_proxy(proxy)!r}: only http:// and https:// proxies are "
                    "supported"
                )
        no_proxy = settings.no_proxy if settings.no_proxy is not None else env.get("no")
        self._bypass = {"no": no_proxy} if no_proxy else {}
        self._decided: dict[tuple[str, str, int | None], str | None] = {}

    def proxy_for(self, url: httpx.URL) -> str | None:
        key = (url.scheme, url.host, url.port)
        if key not in self._decided:
            proxy = self._proxies.get(url.scheme)
            netloc = url.host if url.port is None else f"{url.host}:{url.port}"
            # The stdlib matcher takes suffixes (".corp"), "*", and host[:port] entries.
            if (
                proxy
                and self._bypass
                and urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]  # undocumented: not in typeshed
                    netloc, self._bypass
                )
            ):
                proxy = None
            self._decided[key] = proxy
        return self._decided[key]
