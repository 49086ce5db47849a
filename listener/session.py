"""Finding the scale set, opening and closing its message sessions (waiting out a
predecessor's lingering session)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

from gha_scalesets.listener.config import ScaleSetConfig
from gha_scalesets.listener.scaling import Backoff
from gha_scalesets.scaleset import Client, MessageSession, ScaleSet
from gha_scalesets.scaleset.errors import (
    ApiError,
    ProtocolError,
    RateLimitedError,
    RunnerGroupNotFoundError,
    ScaleSetError,
    ScaleSetNotFoundError,
    SessionConflictError,
    SessionNotFoundError,
    TransportError,
)

log = structlog.get_logger("listener.session")

_CLOSE_TIMEOUT_SECONDS = 3.0  # part of the 10 s shutdown budget


class SessionConflictTimeout(ScaleSetError):
    """Another session kept the scale set for longer than the configured wait."""


def is_transient(exc: ScaleSetError) -> bool:
    """Errors worth waiting out (outages, throttling) rather than stopping for."""
    if isinstance(exc, TransportError | ProtocolError | RateLimitedError):
        return True  # a rate limit, 429 or 403, ends: the client holds its calls until then
    return isinstance(exc, ApiError) and (exc.status >= 500 or exc.status == 429)


async def find_scale_set(
    client: Client, config: ScaleSetConfig, group_id: int | None = None
) -> ScaleSet | None:
    """The configured scale set, by id or by (runner group, name); ``None`` if it does not
    exist (or its runner group does not). ``group_id``: the runner group, when already known."""
    try:
        if config.scale_set_id is not None:
            return await client.get_scale_set(config.scale_set_id)
        if group_id is None:
            group_id = (await client.get_runner_group_by_name(config.runner_group)).id
        return await client.get_scale_set_by_name(group_id, str(config.name))
    except (ScaleSetNotFoundError, RunnerGroupNotFoundError):
        return None


async def open_session(
    client: Client,
    scale_set: ScaleSet,
    owner: str,
    *,
    conflict_timeout: float,
    backoff: Backoff,
    on_event: Callable[[str], None],
    gate: asyncio.Semaphore | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> MessageSession:
    """Create the scale set's session; on 409 retry with backoff and jitter until
    ``conflict_timeout`` (a crashed listener's session expires server-side), on outages forever.
    ``gate`` bounds the creations in flight (each attempt, never the waits between them)."""
    deadline = clock() + conflict_timeout
    while True:
        try:
            async with gate or contextlib.nullcontext():
                session = await client.create_message_session(scale_set.id, owner)
        except SessionConflictError as exc:
            on_event("conflict")
            delay = backoff.failed()
            if clock() + delay > deadline:
                raise SessionConflictTimeout(
                    f"scale set {scale_set.name!r} still has another active session after "
                    f"{conflict_timeout:.0f} s: is another listener running for it? ({exc.message})"
                ) from None
            log.warning(
                "session conflict: waiting for the previous session to end",
                scale_set=scale_set.name,
                retry_in=round(delay, 2),
            )
        except ScaleSetError as exc:
            if not is_transient(exc):
                raise
            delay = backoff.failed()
            log.warning(
                "cannot open a session yet",
                scale_set=scale_set.name,
                error=str(exc),
                retry_in=round(delay, 2),
            )
        else:
            backoff.succeeded()
            on_event("created")
            log.info("session opened", scale_set=scale_set.name, owner=owner)
            return session
        await sleep(delay)


async def close_session(client: Client, scale_set_id: int, session_id: str, name: str) -> bool:
    """Delete the session (ours, or a dead predecessor's by the id its lease recorded) so the
    next session need not wait for it to expire; False if that failed."""
    try:
        await asyncio.wait_for(
            client.delete_message_session_by_id(scale_set_id, session_id), _CLOSE_TIMEOUT_SECONDS
        )
    except SessionNotFoundError:
        log.info("session already gone", scale_set=name)
        return True
    except (ScaleSetError, TimeoutError) as exc:
        log.warning("could not delete the session", scale_set=name, error=str(exc) or "timeout")
        return False
    log.info("session deleted", scale_set=name)
    return True
