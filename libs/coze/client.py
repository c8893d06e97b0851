"""The synchronous client: `CozeClient` and its resources (`bots`, `conversations`, `messages`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

import httpx

from coze import _endpoints as ep
from coze._endpoints import Call, Id, MessageInput, Page
from coze._stream import ChatStream, chat_failed, is_event_stream, not_a_stream
from coze._transport import Request, SyncTransport, make_options, read_envelope
from coze.models import (
    Bot,
    BotDisplayInfo,
    BotDraft,
    BotPublished,
    Chat,
    ChatAnswer,
    ConversationInfo,
    Message,
    Section,
)

T = TypeVar("T")

DEFAULT_USER_ID = "sdk-user"
"""The end user chats are attributed to when neither the call nor the client names one. The server
isolates conversations per (account, user_id), so a fixed default keeps one caller's conversations
reachable across runs; pass `user_id=` to separate your own end users."""


class CozeClient:
    """A client of a cozeplus (or Coze Agent API) server.

    `api_key` defaults to the `COZE_API_KEY` environment variable and `base_url` to
    `COZE_BASE_URL`, else `http://127.0.0.1:8080` (what `cozeplus up` serves). `timeout` is in
    seconds for connecting and between received bytes (so a long stream is fine while it
    flows); `max_retries` bounds the retries of 429s and failed connections. Pass your own
    `http_client` to share a connection pool or set proxies; the client then leaves closing
    it to you.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = 60.0,
        max_retries: int = 3,
        http_client: httpx.Client | None = None,
        *,
        user_id: str = DEFAULT_USER_ID,
    ) -> None:
        self._transport = SyncTransport(
            make_options(api_key, base_url, timeout, max_retries), http_client
        )
        self.user_id = user_id
        self.bots = Bots(self)
        self.conversations = Conversations(self)
        self.messages = self.conversations.messages

    @property
    def base_url(self) -> str:
        return self._transport.options.base_url

    # ------------------------------------------------------------------------------ chat

    @overload
    def chat(
        self,
        *,
        bot_id: Id,
        query: str | None = ...,
        stream: Literal[False] = ...,
        conversation_id: Id | None = ...,
        user_id: str | None = ...,
        additional_messages: Sequence[MessageInput] | None = ...,
        custom_variables: Mapping[str, str] | None = ...,
        meta_data: Mapping[str, Any] | None = ...,
        extra_params: Mapping[str, Any] | None = ...,
        images: Sequence[str] | None = ...,
        auto_save_history: bool = ...,
    ) -> ChatAnswer: ...

    @overload
    def chat(
        self,
        *,
        bot_id: Id,
        query: str | None = ...,
        stream: Literal[True],
        conversation_id: Id | None = ...,
        user_id: str | None = ...,
        additional_messages: Sequence[MessageInput] | None = ...,
        custom_variables: Mapping[str, str] | None = ...,
        meta_data: Mapping[str, Any] | None = ...,
        extra_params: Mapping[str, Any] | None = ...,
        images: Sequence[str] | None = ...,
        auto_save_history: bool = ...,
    ) -> ChatStream: ...

    @overload
    def chat(
        self,
        *,
        bot_id: Id,
        query: str | None = ...,
        stream: bool,
        conversation_id: Id | None = ...,
        user_id: str | None = ...,
        additional_messages: Sequence[MessageInput] | None = ...,
        custom_variables: Mapping[str, str] | None = ...,
        meta_data: Mapping[str, Any] | None = ...,
        extra_params: Mapping[str, Any] | None = ...,
        images: Sequence[str] | None = ...,
        auto_save_history: bool = ...,
    ) -> ChatAnswer | ChatStream: ...

    def chat(
        self,
        *,
        bot_id: Id,
        query: str | None = None,
        stream: bool = False,
        conversation_id: Id | None = None,
        user_id: str | None = None,
        additional_messages: Sequence[MessageInput] | None = None,
        custom_variables: Mapping[str, str] | None = None,
        meta_data: Mapping[str, Any] | None = None,
        extra_params: Mapping[str, Any] | None = None,
        images: Sequence[str] | None = None,
        auto_save_history: bool = True,
    ) -> ChatAnswer | ChatStream:
        """Chat with a published bot (POST /v3/chat).

        `query` is the user's message; `images` are URLs sent with it as one multimodal
        message; `additional_messages` go before it. Without `conversation_id` the server
        starts a new conversation (its id is on the answer / the stream's events).

        `stream=False` waits for the answer and returns a `ChatAnswer`; a chat that ends
        failed raises `ChatFailedError`. `stream=True` returns a `ChatStream` yielding
        `created`, `message` (with `delta`), `message_completed`, then `done` (with `usage`)
        or one `error`. HTTP errors (401, 404, 400, ...) raise before either returns.
        """
        return self._chat(
            ep.chat_request(
                bot_id=bot_id,
                user_id=user_id or self.user_id,
                stream=stream,
                query=query,
                conversation_id=conversation_id,
                additional_messages=additional_messages,
                custom_variables=custom_variables,
                meta_data=meta_data,
                extra_params=extra_params,
                images=images,
                auto_save_history=auto_save_history,
            ),
        )

    def _chat(
        self, request: Request, conversation: Conversation | None = None
    ) -> ChatAnswer | ChatStream:
        if request.json["stream"]:
            return self._chat_stream(request, conversation)
        return self._chat_answer(request, conversation)

    def _chat_answer(self, request: Request, conversation: Conversation | None) -> ChatAnswer:
        response = self._transport.send(request)
        answer = ep.chat_answer(read_envelope(response))
        if conversation is not None:
            conversation.id = answer.conversation_id
        if answer.status == "failed":
            raise chat_failed(answer, response)
        return answer

    def _chat_stream(self, request: Request, conversation: Conversation | None) -> ChatStream:
        response = self._transport.send(request, stream=True)
        if not is_event_stream(response):
            try:
                response.read()
            finally:
                response.close()
            raise not_a_stream(response)
        return ChatStream(
            response, request, conversation._remember if conversation is not None else None
        )

    def cancel(self, conversation_id: Id, chat_id: Id | None = None) -> Chat:
        """Stop a running chat (POST /v3/chat/cancel); without `chat_id`, the conversation's
        running chat. Returns the Chat, status `canceled`; a finished chat raises ConflictError."""
        return self._call(ep.cancel_chat(conversation_id, chat_id))

    def conversation(
        self, bot_id: Id, *, user_id: str | None = None, conversation_id: Id | None = None
    ) -> Conversation:
        """A helper that chats in one conversation, keeping its id across turns."""
        return Conversation(self, bot_id, user_id=user_id, conversation_id=conversation_id)

    # ------------------------------------------------------------------------- plumbing

    def _call(self, call: Call[T]) -> T:
        return call.parse(read_envelope(self._transport.send(call.request)))

    def _pages(self, call: Call[Page[T]]) -> Iterator[T]:
        following: Call[Page[T]] | None = call
        while following is not None:
            page = self._call(following)
            yield from page.items
            following = page.next

    def close(self) -> None:
        """Close the connections (not those of an `http_client` you passed in)."""
        self._transport.close()

    def __enter__(self) -> CozeClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class Conversation:
    """Chats in one conversation: the first turn creates it (unless `conversation_id` was given)
    and every later turn continues it, so the bot sees the earlier turns. One turn at a time."""

    def __init__(
        self,
        client: CozeClient,
        bot_id: Id,
        *,
        user_id: str | None = None,
        conversation_id: Id | None = None,
    ) -> None:
        self._client = client
        self.bot_id = ep.wire_id(bot_id)
        self.user_id = user_id or client.user_id
        self.id: str | None = ep.wire_id(conversation_id) if conversation_id is not None else None

    def _remember(self, conversation_id: str) -> None:
        self.id = conversation_id

    @overload
    def chat(
        self,
        query: str | None = ...,
        *,
        stream: Literal[False] = ...,
        additional_messages: Sequence[MessageInput] | None = ...,
        images: Sequence[str] | None = ...,
        custom_variables: Mapping[str, str] | None = ...,
        meta_data: Mapping[str, Any] | None = ...,
        extra_params: Mapping[str, Any] | None = ...,
        auto_save_history: bool = ...,
    ) -> ChatAnswer: ...

    @overload
    def chat(
        self,
        query: str | None = ...,
        *,
        stream: Literal[True],
        additional_messages: Sequence[MessageInput] | None = ...,
        images: Sequence[str] | None = ...,
        custom_variables: Mapping[str, str] | None = ...,
        meta_data: Mapping[str, Any] | None = ...,
        extra_params: Mapping[str, Any] | None = ...,
        auto_save_history: bool = ...,
    ) -> ChatStream: ...

    def chat(
        self,
        query: str | None = None,
        *,
        stream: bool = False,
        additional_messages: Sequence[MessageInput] | None = None,
        images: Sequence[str] | None = None,
        custom_variables: Mapping[str, str] | None = None,
        meta_data: Mapping[str, Any] | None = None,
        extra_params: Mapping[str, Any] | None = None,
        auto_save_history: bool = True,
    ) -> ChatAnswer | ChatStream:
        """One turn; arguments as `CozeClient.chat`."""
        request = ep.chat_request(
            bot_id=self.bot_id,
            user_id=self.user_id,
            stream=stream,
            query=query,
            conversation_id=self.id,
            additional_messages=additional_messages,
            custom_variables=custom_variables,
            meta_data=meta_data,
            extra_params=extra_params,
            images=images,
            auto_save_history=auto_save_history,
        )
        return self._client._chat(request, self)

    def messages(self, *, order: str = "asc", limit: int = 50) -> Iterator[Message]:
        """The conversation's stored messages, oldest first by default."""
        if self.id is None:
            return iter(())
        return self._client.messages.list(self.id, order=order, limit=limit)

    def clear(self) -> Section | None:
        """Start a fresh context: later turns do not see the earlier ones."""
        return self._client.conversations.clear(self.id) if self.id is not None else None


class Bots:
    """Bots: the product document's draft → publish → online routes and the /v1 read routes."""

    def __init__(self, client: CozeClient) -> None:
        self._client = client

    def get(self, bot_id: Id, *, is_published: bool | None = None) -> Bot:
        """Details (GET /v1/bots/{id}): the latest published version, or the draft with
        `is_published=False`."""
        return self._client._call(ep.get_bot(bot_id, is_published))

    def online_info(self, bot_id: Id) -> Bot:
        """The latest published version (GET /v1/bot/get_online_info)."""
        return self._client._call(ep.bot_online_info(bot_id))

    def create_draft(
        self,
        name: str,
        *,
        description: str | None = None,
        icon_url: str | None = None,
        prompt: str | None = None,
        model: str | None = None,
    ) -> BotDraft:
        return self._client._call(ep.create_draft_bot(name, description, icon_url, prompt, model))

    def update_display_info(
        self,
        bot_id: Id,
        *,
        name: str | None = None,
        description: str | None = None,
        icon_url: str | None = None,
        prompt: str | None = None,
        model: str | None = None,
    ) -> BotDisplayInfo:
        """Change the draft; only the fields passed change. Publish to put it online."""
        return self._client._call(
            ep.update_bot_display_info(bot_id, name, description, icon_url, prompt, model)
        )

    def publish(self, bot_id: Id) -> BotPublished:
        """Freeze the draft as a new numbered version; chats use it from then on."""
        return self._client._call(ep.publish_bot(bot_id))

    def delete(self, bot_id: Id) -> None:
        self._client._call(ep.delete_bot(bot_id))


class Conversations:
    def __init__(self, client: CozeClient) -> None:
        self._client = client
        self.messages = Messages(client)

    def create(
        self,
        *,
        bot_id: Id | None = None,
        messages: Sequence[MessageInput] | None = None,
        meta_data: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> ConversationInfo:
        return self._client._call(ep.create_conversation(bot_id, messages, meta_data, name))

    def retrieve(self, conversation_id: Id) -> ConversationInfo:
        return self._client._call(ep.retrieve_conversation(conversation_id))

    def list(
        self,
        bot_id: Id,
        *,
        page_size: int = 50,
        sort_order: str = "desc",
        user_id: str | None = None,
    ) -> Iterator[ConversationInfo]:
        """Every conversation with the bot (`sort_order` "desc": newest first), fetched
        `page_size` at a time as you iterate; `user_id` keeps one end user's only."""
        return self._client._pages(ep.list_conversations(bot_id, 1, page_size, sort_order, user_id))

    def update(self, conversation_id: Id, *, name: str | None) -> ConversationInfo:
        return self._client._call(ep.update_conversation(conversation_id, name))

    def clear(self, conversation_id: Id) -> Section:
        """Start a new context section: later chats no longer see the earlier messages."""
        return self._client._call(ep.clear_conversation(conversation_id))

    def delete(self, conversation_id: Id) -> None:
        self._client._call(ep.delete_conversation(conversation_id))


class Messages:
    def __init__(self, client: CozeClient) -> None:
        self._client = client

    def create(
        self,
        conversation_id: Id,
        *,
        content: str,
        role: str = "user",
        content_type: str = "text",
        meta_data: Mapping[str, Any] | None = None,
    ) -> Message:
        return self._client._call(
            ep.create_message(conversation_id, role, content, content_type, meta_data)
        )

    def list(
        self,
        conversation_id: Id,
        *,
        order: str = "desc",
        chat_id: Id | None = None,
        before_id: Id | None = None,
        after_id: Id | None = None,
        limit: int = 50,
    ) -> Iterator[Message]:
        """Every message (`order` "desc": newest first, or "asc"), fetched `limit` at a time
        as you iterate, following `last_id` while the server says `has_more`."""
        return self._client._pages(
            ep.list_messages(
                conversation_id,
                order=order,
                chat_id=chat_id,
                before_id=before_id,
                after_id=after_id,
                limit=limit,
            )
        )

    def retrieve(self, conversation_id: Id, message_id: Id) -> Message:
        return self._client._call(ep.retrieve_message(conversation_id, message_id))

    def modify(
        self,
        conversation_id: Id,
        message_id: Id,
        *,
        content: str | None = None,
        content_type: str | None = None,
        meta_data: Mapping[str, Any] | None = None,
    ) -> Message:
        return self._client._call(
            ep.modify_message(conversation_id, message_id, content, content_type, meta_data)
        )

    def delete(self, conversation_id: Id, message_id: Id) -> Message:
        """Delete a message; returns it as it was."""
        return self._client._call(ep.delete_message(conversation_id, message_id))


__all__ = ["DEFAULT_USER_ID", "Bots", "Conversation", "Conversations", "CozeClient", "Messages"]
