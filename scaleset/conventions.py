"""Wire conventions shared by every call: URLs, bodies, headers (reference §3, §4.6, §5.5)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gha_scalesets import __version__

API_VERSION = "6.0-preview"
MQ_ACCEPT = f"application/json; api-version={API_VERSION}"
JSON = "application/json"


def admin_url(base: str, path: str, query: dict[str, Any] | None = None) -> str:
    """Join an admin endpoint to the opaque admin base URL.

    The base's path prefix and query are kept, ``api-version`` is added when absent, and keys are
    sorted like Go's ``url.Values.Encode``.
    """
    parts = urlsplit(base)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    params.update({k: str(v) for k, v in (query or {}).items()})
    params.setdefault("api-version", API_VERSION)
    joined = parts.path.rstrip("/") + "/" + path.lstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, joined, urlencode(sorted(params.items())), ""))


def message_url(queue_url: str, last_message_id: int) -> str:
    """The long-poll URL: the opaque queue URL plus ``lastMessageId`` only when it is positive."""
    if last_message_id <= 0:
        return queue_url
    parts = urlsplit(queue_url)
    params = [
        *parse_qsl(parts.query, keep_blank_values=True),
        ("lastMessageId", str(last_message_id)),
    ]
    return urlunsplit(parts._replace(query=urlencode(params)))


def message_delete_url(queue_url: str, message_id: int) -> str:
    """The ack URL: ``/{messageId}`` appended to the queue URL's path, query kept."""
    parts = urlsplit(queue_url)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{message_id}"))


def json_body(payload: object, *, newline: bool = False) -> bytes:
    """Compact JSON like Go's encoder (no HTML escaping; optional trailing newline)."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return (text + "\n" if newline else text).encode()


class UserAgent:
    """The JSON-object User-Agent (reference §5.5) that identifies us in GitHub's logs.

    ``{"system":"gha-scalesets","version":"<version>","subsystem":"listener","kind":"scaleset",
    "scale_set_id":42}``: the product, its version, the part of it calling (``listener``,
    ``provider``, ``runner-emulator``, ``client`` by default) and the scale set, 0 until known.
    :meth:`identify` updates it in place once the id is known; ``extra`` adds or overrides keys.
    """

    def __init__(self, subsystem: str = "client", extra: dict[str, Any] | None = None) -> None:
        self._fields: dict[str, Any] = {
            "system": "gha-scalesets",
            "version": __version__,
            "subsystem": subsystem,
            "kind": "scaleset",
            "scale_set_id": 0,
            **(extra or {}),
        }
        self._header = ""
        self._render()

    def _render(self) -> None:
        self._header = json.dumps(self._fields, separators=(",", ":"))

    def identify(self, *scale_set_ids: int) -> None:
        """Name the scale set(s) served; a listener of several lists them all."""
        self._fields["scale_set_id"] = scale_set_ids[0] if scale_set_ids else 0
        if len(scale_set_ids) > 1:
            self._fields["scale_set_ids"] = list(scale_set_ids)
        else:
            self._fields.pop("scale_set_ids", None)
        self._render()

    def __str__(self) -> str:
        return self._header
