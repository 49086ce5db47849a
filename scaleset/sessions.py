"""Message sessions, the message-queue long poll, acks and job acquisition."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Sequence

from gha_scalesets.scaleset.base import SCALE_SETS, BaseClient, Pin
from gha_scalesets.scaleset.conventions import (
    JSON,
    MQ_ACCEPT,
    admin_url,
    json_body,
    message_delete_url,
    message_url,
)
from gha_scalesets.scaleset.errors import (
    ApiError,
    MessageQueueTokenExpiredError,
    ProtocolError,
    ScaleSetNotFoundError,
    SessionNotFoundError,
)
from gha_scalesets.scaleset.messages import ScaleSetMessage, parse_message
from gha_scalesets.scaleset.models import MessageSession, Page
from gha_scalesets.scaleset.sharding import LONG_POLL_LANE
from gha_scalesets.scaleset.transport import Outcome, Request

ZERO_UUID = "00000000-0000-0000-0000-000000000000"
UNLIMITED_CAPACITY = 2**31 - 1


class SessionMethods(BaseClient):
    """Listener-side calls of :class:`~scaleset.Client`."""

    def _session(
        self, outcome: Outcome, scale_set_id: int, not_found: type[ApiError]
    ) -> MessageSession:
        session = MessageSession.from_bytes(
            self._ok(outcome, not_found=not_found), outcome.operation
        )
        session._scale_set_id = scale_set_id
        session._credential = outcome.credential
        return session

    async def create_message_session(
        self, scale_set_id: int, owner: str | None = None
    ) -> MessageSession:
        """Open the scale set's message session (raises :class:`SessionConflictError` if taken)."""
        owner = owner or socket.gethostname()
        outcome = await self._admin(
            "POST",
            f"{SCALE_SETS}/{scale_set_id}/sessions",
            f"{SCALE_SETS}/{{scaleSetId}}/sessions",
            body=json_body({"ownerName": owner, "sessionId": ZERO_UUID}),
            pin=lambda: self._home(scale_set_id),
        )
        session = self._session(outcome, scale_set_id, ScaleSetNotFoundError)
        if not session.message_queue_url:
            # Seen during a GitHub outage. Free the scale set so the next attempt is not a 409.
            await self.delete_message_session(session)
            raise ProtocolError(
                f"the service opened a session on scale set {scale_set_id} without a message "
                "queue URL (a known outage symptom); retry later"
            )
        return session

    @staticmethod
    def _session_path(scale_set_id: int, session_id: str) -> tuple[str, str]:
        return (
            f"{SCALE_SETS}/{scale_set_id}/sessions/{session_id}",
            f"{SCALE_SETS}/{{scaleSetId}}/sessions/{{sessionId}}",
        )

    async def refresh_message_session(self, session: MessageSession) -> MessageSession:
        """Renew the session's message-queue token; ``session`` itself is updated and returned."""
        path, route = self._session_path(session.scale_set_id, session.session_id)
        outcome = await self._admin("PATCH", path, route, pin=self._session_pin(session))
        fresh = self._session(outcome, session.scale_set_id, SessionNotFoundError)
        if not fresh.message_queue_url:
            raise ProtocolError("the refreshed session has no message queue URL; retry later")
        session.replace_with(fresh)
        return session

    async def delete_message_session(self, session: MessageSession) -> None:
        """Close the session so another listener can open one."""
        await self._delete_session(
            session.scale_set_id, session.session_id, self._session_pin(session)
        )

    async def delete_message_session_by_id(self, scale_set_id: int, session_id: str) -> None:
        """Close a session known only by its id (a crashed listener's, recorded elsewhere)."""
        await self._delete_session(scale_set_id, session_id, lambda: self._home(scale_set_id))

    def _session_pin(self, session: MessageSession) -> Pin:
        """The session's credential, or its successor when GitHub refused that one."""
        return lambda: self._home(session.scale_set_id, session._credential)

    async def _delete_session(self, scale_set_id: int, session_id: str, pin: Pin) -> None:
        path, route = self._session_path(scale_set_id, session_id)
        outcome = await self._admin("DELETE", path, route, pin=pin)
        if outcome.status == 404 and outcome.ambiguous:
            return
        self._ok(outcome, not_found=SessionNotFoundError)

    async def _with_queue_token(
        self, session: MessageSession, build: Callable[[str], Awaitable[Request]]
    ) -> Outcome:
        """Send a message-queue-token call; on 401 refresh the session once and resend.

        A second 401 raises :class:`MessageQueueTokenExpiredError`.
        """
        token = session.message_queue_access_token.get_secret_value()
        outcome = await self._send_queue(session, await build(token))
        if outcome.status != 401:
            return outcome
        if session._refresh_lock is None:
            session._refresh_lock = asyncio.Lock()
        async with session._refresh_lock:
            # Concurrent callers share one refresh: only the first still sees the stale token.
            if session.message_queue_access_token.get_secret_value() == token:
                await self.refresh_message_session(session)
        retried = await self._send_queue(
            session, await build(session.message_queue_access_token.get_secret_value())
        )
        if retried.status == 401:
            raise retried.error(MessageQueueTokenExpiredError)
        retried.ambiguous = retried.ambiguous or outcome.ambiguous
        return retried

    async def _send_queue(self, session: MessageSession, request: Request) -> Outcome:
        """A queue-token request, paced on the session's credential."""
        return await self._send_as(self._session_pin(session)().label, request)

    def _queue_headers(self, token: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "User-Agent": str(self.user_agent), **extra}

    async def get_message(
        self,
        session: MessageSession,
        last_message_id: int = 0,
        max_capacity: int = UNLIMITED_CAPACITY,
    ) -> ScaleSetMessage | None:
        """Long-poll the next message after ``last_message_id``; ``None`` when none came (202).

        ``max_capacity`` tells the service how many more runners this listener can start.
        """

        async def build(token: str) -> Request:
            headers = self._queue_headers(
                token, Accept=MQ_ACCEPT, **{"X-ScaleSetMaxCapacity": str(max(0, max_capacity))}
            )
            url = message_url(session.message_queue_url, last_message_id)
            return Request(
                "GET",
                url,
                "{messageQueueUrl}",
                headers,
                timeout=self._poll_timeout,
                pool_lane=LONG_POLL_LANE,
            )

        outcome = await self._with_queue_token(session, build)
        if outcome.status == 202:
            return None
        return parse_message(self._ok(outcome))

    async def delete_message(self, session: MessageSession, message_id: int) -> None:
        """Acknowledge (delete) a message so it is not redelivered."""

        async def build(token: str) -> Request:
            url = message_delete_url(session.message_queue_url, message_id)
            headers = self._queue_headers(token, **{"Content-Type": JSON})
            return Request("DELETE", url, "{messageQueueUrl}/{messageId}", headers)

        outcome = await self._with_queue_token(session, build)
        if outcome.status == 404 and outcome.ambiguous:
            return
        self._ok(outcome)

    async def acquire_jobs(
        self, session: MessageSession, scale_set_id: int, request_ids: Sequence[int]
    ) -> list[int]:
        """Acquire offered jobs (GHES ``JobAvailable``); returns the ids actually acquired."""
        if not request_ids:
            return []

        async def build(token: str) -> Request:
            connection = await self._chains[self._session_pin(session)().label].admin()
            url = admin_url(connection.base_url, f"{SCALE_SETS}/{scale_set_id}/acquirejobs")
            headers = self._queue_headers(token, **{"Content-Type": JSON})
            body = json_body(list(request_ids))
            return Request("POST", url, f"{SCALE_SETS}/{{scaleSetId}}/acquirejobs", headers, body)

        outcome = await self._with_queue_token(session, build)
        page = Page[int].from_bytes(
            self._ok(outcome, not_found=ScaleSetNotFoundError), outcome.operation
        )
        return page.value
