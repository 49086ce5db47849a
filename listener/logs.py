"""Structured JSON logs (structlog) with a last-line-of-defence redaction of secrets.

Code never logs tokens or JIT configs on purpose; the redaction processor also masks values
under secret-sounding keys and anything shaped like a GitHub token, a JWT or a PEM key, in case
a third-party exception message carries one.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[redacted]"

_SECRET_KEY = re.compile(
    r"token|secret|password|passwd|private_key|jit_?config|authorization|credential",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{20,})"  # GitHub tokens
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"  # JWTs
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
    r"|(?i:bearer|remoteauth)\s+\S+"
)


# Third-party loggers capped whatever the level. httpx logs every request URL at INFO (noise);
# botocore/boto3/s3transfer/urllib3 print request parameters and bodies at DEBUG, and those
# carry JIT configs (SSM PutParameter, EC2 user data): they must never reach DEBUG.
_QUIET_LOGGERS = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "botocore": logging.INFO,
    "boto3": logging.INFO,
    "s3transfer": logging.INFO,
    "urllib3": logging.WARNING,
}


def redact_text(text: str) -> str:
    """``text`` with every token-like substring replaced."""
    return _SECRET_VALUE.sub(REDACTED, text)


def _redact(value: Any, key: str = "") -> Any:
    if key and _SECRET_KEY.search(key) and value is not None:
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: _redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def redact_event(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secrets in every field, including rendered exceptions."""
    return {k: _redact(v, k if k != "event" else "") for k, v in event_dict.items()}


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """Send structlog and stdlib logging (httpx, botocore, scaleset) as JSON lines to ``stream``."""
    stream = stream or sys.stderr
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: list[Any] = [
        structlog.processors.format_exc_info,
        redact_event,
        structlog.processors.JSONRenderer(),
    ]
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, quiet in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(quiet)
    structlog.configure(
        # Redacted before the event reaches stdlib logging: every handler (pytest's capture,
        # an embedding application's own) sees masked values, not just ours.
        processors=[*shared, redact_event, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
