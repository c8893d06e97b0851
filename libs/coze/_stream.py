"""Streaming chats: the wire's SSE events turned into the few typed events users handle.

The wire sends (wire contract section 2):

    success: chat.created, chat.in_progress, message.delta x n, message.completed,
             chat.completed, stream.done, done
    failure: chat.created, chat.in_progress, [message.delta x n], chat.failed, error,
             stream.done, done
    cancel:  ..., chat.canceled, stream.done, done

Users see `created`, `message` x n, `message_completed`, and then exactly one of `done`
(completed or canceled) or `error` (failed), after which iteration stops. A failure is reported
once even though the wire announces it twice (`conversation.chat.failed` and `error`): the error
event is built from the failed chat's `last_error`, when it is announced, and the wire's own
`error` event is then swallowed.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from types import TracebackType
from typing import Any

import httpx

from coze._sse import SSEDecoder, SSEEvent
from coze._transport import Request, log_id_of, read_envelope, transport_error
from coze.errors import ChatFailedError, CozeStreamError
from coze.models import (
    Chat,
    ChatAnswer,
    ChatCreatedEvent,
    ChatEvent,
    DoneEvent,
    ErrorEvent,
    Message,
    MessageCompletedEvent,
    MessageEvent,
)

_CHAT_STATUS_BY_EVENT = {
    "conversation.chat.created": "created",
    "conversation.chat.in_progress": "in_progress",
    "conversation.chat.completed": "completed",
    "conversation.chat.failed": "failed",
    "conversation.chat.canceled": "canceled",
    "conversation.chat.requires_action": "requires_action",
}
_TERMINAL = frozenset({"completed", "failed", "canceled", "requires_action"})


class ChatEventTranslator:
    """Turns wire events into user events; knows the chat's ids as soon as the wire gives them."""

    def __init__(self, on_conversation_id: Callable[[str], None] | None = None) -> None:
        # Told the conversation id once it is known, before the event that carries it is
        # yielded: a `Conversation` helper keeps it even if the caller stops iterating early.
        self._on_conversation_id = on_conversation_id
        self.conversation_id: str | None = None
        self.chat_id: str | None = None
        self.finished = False
        self._outcome: Chat | None = None
        self._deltas: list[str] = []
        self._answer: str | None = None
        self._error_sent = False

    def feed(self, event: SSEEvent) -> list[ChatEvent]:
        if self.finished:
            raise CozeStreamError(f"event {event.name!r} after the stream's done event")
        if event.name == "done":
            return self._done(event.data)
        if not isinstance(event.data, dict):
            raise CozeStreamError(f"the data of {event.name!r} is not a JSON object")
        status = _CHAT_STATUS_BY_EVENT.get(event.name)
        if status is not None:
            return self._chat_event(status, event.data)
        if event.name == "conversation.message.delta":
            return self._delta(event.data)
        if event.name == "conversation.message.completed":
            return self._completed(event.data)
        if event.name in ("error", "conversation.error"):
            return self._error(event.data)
        # conversation.stream.done, and events this SDK does not model (audio, ...): nothing to
        # tell the user; the stream ends with `done`.
        return []

    def end(self) -> list[ChatEvent]:
        """The body ended without a `done` event."""
        if self._error_sent:
            return []
        raise CozeStreamError("the event stream ended before its done event")

    # ---------------------------------------------------------------------------- events

    def _chat_event(self, status: str, data: dict[str, Any]) -> list[ChatEvent]:
        # The official Chat object is at the top level; a server sending only the product
        # document's `run_record_item` still yields a usable Chat.
        fields = {k: v for k, v in data.items() if k not in ("event", "run_record_item")}
        record = data.get("run_record_item")
        chat = Chat.model_validate(
            {
                "id": self.chat_id or "",
                "conversation_id": self.conversation_id or "",
                "status": status,
                **(record if isinstance(record, dict) else {}),
                **fields,
            }
        )
        self.chat_id = self.chat_id or chat.id or None
        if self.conversation_id is None and chat.conversation_id:
            self.conversation_id = chat.conversation_id
            if self._on_conversation_id is not None:
                self._on_conversation_id(chat.conversation_id)
        if status == "created":
            return [
                ChatCreatedEvent(conversation_id=chat.conversation_id, chat_id=chat.id, chat=chat)
            ]
        if status not in _TERMINAL:
            return []
        self._outcome = chat
        if status == "failed":
            error = chat.last_error
            return self._error_event(error.code or 500, error.msg or "chat failed")
        return []

    def _message(self, data: dict[str, Any]) -> dict[str, Any]:
        item = data.get("message_item")
        fields = {k: v for k, v in data.items() if k not in ("event", "message_item")}
        return {
            "id": "",
            "conversation_id": self.conversation_id or "",
            "chat_id": self.chat_id or "",
            "role": "assistant",
            "content": "",
            **(item if isinstance(item, dict) else {}),
            **fields,
        }

    @staticmethod
    def _is_answer(message: dict[str, Any]) -> bool:
        # Only the answer is the bot's reply; other message types (tool calls, follow-up
        # suggestions, verbose) are not text to show the user.
        return bool(
            message.get("role") == "assistant" and message.get("type") in (None, "", "answer")
        )

    def _delta(self, data: dict[str, Any]) -> list[ChatEvent]:
        message = self._message(data)
        if not self._is_answer(message):
            return []
        delta = str(message.get("content") or "")
        self._deltas.append(delta)
        return [
            MessageEvent(
                delta=delta,
                message_id=message["id"],
                conversation_id=message["conversation_id"],
                chat_id=message["chat_id"],
                role=message["role"],
                content_type=message.get("content_type") or "text",
                reasoning_delta=message.get("reasoning_content") or "",
            )
        ]

    def _completed(self, data: dict[str, Any]) -> list[ChatEvent]:
        fields = self._message(data)
        if not self._is_answer(fields):
            return []
        message = Message.model_validate(fields)
        self._answer = message.content
        return [MessageCompletedEvent(content=message.content, message=message)]

    def _error(self, data: dict[str, Any]) -> list[ChatEvent]:
        nested = data.get("error")
        source = nested if isinstance(nested, dict) else data
        code = source.get("code")
        msg = source.get("msg")
        return self._error_event(
            code if isinstance(code, int) and code else 500,
            msg if isinstance(msg, str) and msg else "chat failed",
        )

    def _error_event(self, code: int, msg: str) -> list[ChatEvent]:
        if self._error_sent:
            return []
        self._error_sent = True
        return [
            ErrorEvent(
                code=code, msg=msg, conversation_id=self.conversation_id, chat_id=self.chat_id
            )
        ]

    def _done(self, data: Any) -> list[ChatEvent]:
        # cozeplus sends {"event": "done"}; Coze cloud sends the string "[DONE]".
        if data != {"event": "done"} and data != "[DONE]":
            raise CozeStreamError(f"the done event's data is not a done marker: {data!r}")
        self.finished = True
        if self._error_sent:
            return []
        outcome = self._outcome
        if outcome is None:
            raise CozeStreamError("the stream ended without the chat's outcome")
        return [
            DoneEvent(
                conversation_id=outcome.conversation_id,
                chat_id=outcome.id,
                status=outcome.status,
                usage=outcome.usage,
                content=self._answer if self._answer is not None else "".join(self._deltas),
                chat=outcome,
            )
        ]


def is_event_stream(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("text/event-stream")


def not_a_stream(response: httpx.Response) -> CozeStreamError:
    """For a 2xx answer to a streaming request that is not a stream (its body read): raises the
    envelope's error if it carries one, otherwise returns the error to raise."""
    read_envelope(response)
    return CozeStreamError(
        f"expected an event stream, got {response.headers.get('content-type')!r}"
    )


def chat_failed(answer: ChatAnswer, response: httpx.Response) -> ChatFailedError:
    """The error a non-streaming chat that ended failed raises."""
    return ChatFailedError(
        answer.last_error.code or 500,
        answer.last_error.msg or "chat failed",
        answer=answer,
        log_id=log_id_of(response),
        http_status=response.status_code,
    )


class ChatStream:
    """The events of a streaming chat. Iterate it; it closes its connection when the stream ends,
    when iteration stops early inside `with`, or on `close()`."""

    def __init__(
        self,
        response: httpx.Response,
        request: Request,
        on_conversation_id: Callable[[str], None] | None = None,
    ) -> None:
        self.response = response
        self.log_id = log_id_of(response)
        self._request = request
        self._translator = ChatEventTranslator(on_conversation_id)
        self._events = self._iterate()

    @property
    def conversation_id(self) -> str | None:
        """Known from the first event on (`created`)."""
        return self._translator.conversation_id

    @property
    def chat_id(self) -> str | None:
        return self._translator.chat_id

    def __iter__(self) -> Iterator[ChatEvent]:
        return self

    def __next__(self) -> ChatEvent:
        return next(self._events)

    def _iterate(self) -> Generator[ChatEvent, None, None]:
        decoder = SSEDecoder()
        translator = self._translator
        try:
            for chunk in self.response.iter_bytes():
                for sse in decoder.feed(chunk):
                    yield from translator.feed(sse)
                    if translator.finished:
                        return
            decoder.close()
            yield from translator.end()
        except httpx.HTTPError as exc:
            # Mid-stream: never retried, the chat is already running on the server.
            raise transport_error(exc, self._request) from exc
        finally:
            self.response.close()

    def close(self) -> None:
        self._events.close()
        self.response.close()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncChatStream:
    """The async twin of `ChatStream`: `async for event in stream`."""

    def __init__(
        self,
        response: httpx.Response,
        request: Request,
        on_conversation_id: Callable[[str], None] | None = None,
    ) -> None:
        self.response = response
        self.log_id = log_id_of(response)
        self._request = request
        self._translator = ChatEventTranslator(on_conversation_id)
        self._events = self._iterate()

    @property
    def conversation_id(self) -> str | None:
        return self._translator.conversation_id

    @property
    def chat_id(self) -> str | None:
        return self._translator.chat_id

    def __aiter__(self) -> AsyncIterator[ChatEvent]:
        return self

    async def __anext__(self) -> ChatEvent:
        return await anext(self._events)

    async def _iterate(self) -> AsyncGenerator[ChatEvent, None]:
        decoder = SSEDecoder()
        translator = self._translator
        try:
            async for chunk in self.response.aiter_bytes():
                for sse in decoder.feed(chunk):
                    for event in translator.feed(sse):
                        yield event
                    if translator.finished:
                        return
            decoder.close()
            for event in translator.end():
                yield event
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._request) from exc
        finally:
            await self.response.aclose()

    async def aclose(self) -> None:
        await self._events.aclose()
        await self.response.aclose()

    async def __aenter__(self) -> AsyncChatStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
