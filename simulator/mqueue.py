"""One scale set's message queue: job events waiting to be packed, and un-deleted messages.

Events are packed lazily, when a listener polls, into one envelope of at most
:data:`MAX_JOB_MESSAGES`. A message stays until it is DELETEd: a poll receives the oldest
un-deleted message whose id is above its ``lastMessageId``, so a new session (which starts
from 0) gets everything its predecessor did not acknowledge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_JOB_MESSAGES = 50


@dataclass(frozen=True)
class Message:
    id: int
    events: list[dict[str, Any]]


class MessageQueue:
    def __init__(self) -> None:
        self.pending: list[dict[str, Any]] = []
        self.messages: dict[int, Message] = {}

    def emit(self, event: dict[str, Any]) -> None:
        self.pending.append(event)

    def next_message(self, last_id: int, new_id: Callable[[int], int]) -> Message | None:
        """The message to deliver to a poll that has seen up to ``last_id``, if any.

        ``new_id(last_id)`` mints an id above both ``last_id`` and every earlier id.
        """
        for message in self.messages.values():
            if message.id > last_id:
                return message
        if not self.pending:
            return None
        events = self.pending[:MAX_JOB_MESSAGES]
        del self.pending[:MAX_JOB_MESSAGES]
        message = Message(new_id(last_id), events)
        self.messages[message.id] = message
        return message

    def delete(self, message_id: int) -> None:
        self.messages.pop(message_id, None)
