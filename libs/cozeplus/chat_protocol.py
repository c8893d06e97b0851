"""What edges and runners say to each other over NATS about a chat.

A chat request goes edge -> runners on the JetStream work queue as `ChatRequest` JSON.
The run's events come back on the chat's core-NATS subject (`subjects.chat_events`),
one NATS message per SSE event: the event name in the `EVENT_HEADER` header and the
payload, already encoded as the wire's one-line JSON, as the body. The edge writes
body bytes to the client as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import BaseModel, Field, TypeAdapter

from cozeplus.vocabulary import MessageType

EVENT_HEADER = "Cozeplus-Event"
# A runner sends this on a chat's subject while the model is quiet, so the edge can tell
# a slow model from a lost runner. Never forwarded to clients.
HEARTBEAT_EVENT = "cozeplus.heartbeat"

# Per-chat event sequence numbers (docs/operations.md): a runner numbers the events it
# publishes for a chat 1, 2, 3, ... in SEQ_HEADER, names itself in PUBLISHER_HEADER (a
# redelivered chat's next runner numbers from 1 again), and its heartbeats carry the last
# number sent in SEQ_SENT_HEADER, so the edge can tell a lost event even at a stream's tail.
# Headers, so the payload bytes stay exactly what the edge forwards.
SEQ_HEADER = "Cozeplus-Seq"
SEQ_SENT_HEADER = "Cozeplus-Seq-Sent"
PUBLISHER_HEADER = "Cozeplus-Publisher"

CHAT_CREATED = "conversation.chat.created"
CHAT_IN_PROGRESS = "conversation.chat.in_progress"
CHAT_COMPLETED = "conversation.chat.completed"
CHAT_FAILED = "conversation.chat.failed"
CHAT_CANCELED = "conversation.chat.canceled"
# The run paused for client-side tool outputs: the stream ends, the chat does not.
CHAT_REQUIRES_ACTION = "conversation.chat.requires_action"
MESSAGE_DELTA = "conversation.message.delta"
MESSAGE_COMPLETED = "conversation.message.completed"
ERROR = "error"
STREAM_DONE = "conversation.stream.done"
DONE = "done"

# The events that end a chat's stream (requires_action ends it until outputs are submitted).
TERMINAL_CHAT_EVENTS = frozenset({CHAT_COMPLETED, CHAT_FAILED, CHAT_CANCELED, CHAT_REQUIRES_ACTION})


class InputMessage(BaseModel):
    role: str
    type: str = MessageType.QUESTION
    content: str
    content_type: str = "text"
    meta_data: dict[str, str] = Field(default_factory=dict)


_INPUT_MESSAGES = TypeAdapter(list[InputMessage])


def encode_input_messages(messages: Sequence[InputMessage]) -> str:
    """A chat's input as the JSON list the registry keeps for a paused chat that does not
    save it (PauseRunRequest.unsaved_input_json)."""
    return _INPUT_MESSAGES.dump_json(list(messages)).decode()


def decode_input_messages(raw: str) -> list[InputMessage]:
    """The inverse of encode_input_messages; ValueError when `raw` is not such a list."""
    return _INPUT_MESSAGES.validate_json(raw) if raw else []


class HistoryMessage(BaseModel):
    """A stored message of the conversation's history window, as a prompt reads it."""

    role: str
    type: str
    content: str
    content_type: str = "text"
    meta_data_json: str = ""


class ChatRequest(BaseModel):
    """One chat, queued by an edge for any runner. `bot_version` 0 runs the draft."""

    chat_id: int
    conversation_id: int
    section_id: int
    owner_id: int
    user_id: str
    bot_id: int
    bot_version: int
    messages: list[InputMessage]
    custom_variables: dict[str, str] = Field(default_factory=dict)
    meta_data: dict[str, str] = Field(default_factory=dict)
    extra_params: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)
    auto_save_history: bool = True
    created_at: int
    # Non-zero when this request resumes a chat paused in requires_action whose tool outputs
    # were submitted (an id the edge minted for this resumption): the runner continues from
    # the registry's state (history, stored tool messages, custom variables) rather than
    # from `messages`, which is empty.
    resume_id: int = 0
    # The history window the registry gave the edge with CreateChat; None when not sent (a
    # resumption, or too large for the queue): the runner then waits for StartRun's. With it
    # a runner sends the model its request while StartRun is still under way.
    history: list[HistoryMessage] | None = None
    # False when the edge queued the chat while the registry was still recording it (a new
    # conversation: the edge minted its id and knows its history is empty). A runner's
    # StartRun may then find no chat yet: it asks again for a while instead of taking that
    # for a chat that ended (services/runner/chat_run.py).
    recorded: bool = True

    @property
    def resumes(self) -> bool:
        return self.resume_id != 0

    @property
    def queue_message_id(self) -> str:
        """The work queue's deduplication id: a retried publish is stored once, while each
        resumption of the same chat is a message of its own."""
        return f"{self.chat_id}.resume.{self.resume_id}" if self.resume_id else str(self.chat_id)

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump())

    @classmethod
    def decode(cls, data: bytes) -> ChatRequest:
        return cls.model_validate(orjson.loads(data))
