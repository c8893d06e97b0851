"""Every API call the SDK makes, described once: route, parameters, and how to read the answer.

The sync and async clients only differ in how they send (`send` vs `await send`), so both
build their calls here and the knowledge of each route lives in one place.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from coze._transport import Params, Request
from coze.errors import CozeError
from coze.models import (
    Bot,
    BotDisplayInfo,
    BotDraft,
    BotPublished,
    Chat,
    ChatAnswer,
    ConversationInfo,
    InputMessage,
    Message,
    Section,
)

T = TypeVar("T")

Id = int | str
"""An id as the caller has it: the server's ids are integers, sent as strings on /v1 and /v3."""

MessageInput = InputMessage | Mapping[str, Any]


@dataclass(frozen=True)
class Call(Generic[T]):
    request: Request
    parse: Callable[[dict[str, Any]], T]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    # The call for the following page; None on the last one.
    next: Call[Page[T]] | None


def wire_id(value: Id) -> str:
    """An id for /v1 and /v3 routes, where the official SDKs send (and expect) strings."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"an id must be an int or a str, not {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise ValueError("an id must not be empty")
    return text


def api_id(value: Id) -> int | str:
    """An id for /api routes, which the product document shows as JSON numbers."""
    text = wire_id(value)
    return int(text) if text.isdigit() else text


def _data(body: dict[str, Any]) -> Any:
    return body.get("data")


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    # The server treats null as absent; leaving them out keeps requests short and readable.
    return {k: v for k, v in values.items() if v is not None}


def message_payload(message: MessageInput) -> dict[str, Any]:
    if isinstance(message, InputMessage):
        return message.model_dump(exclude_none=True)
    return _drop_none(message)


def _object_string(query: str | None, images: Sequence[str]) -> dict[str, Any]:
    """One user message mixing text and image URLs (wire contract: `object_string` content)."""
    items: list[dict[str, str]] = []
    if query:
        items.append({"type": "text", "text": query})
    items.extend({"type": "image", "file_url": url} for url in images)
    return {
        "role": "user",
        "content": json.dumps(items, ensure_ascii=False),
        "content_type": "object_string",
    }


# ----------------------------------------------------------------------------------- chat


def chat_request(
    *,
    bot_id: Id,
    user_id: str,
    stream: bool,
    query: str | None,
    conversation_id: Id | None,
    additional_messages: Sequence[MessageInput] | None,
    custom_variables: Mapping[str, str] | None,
    meta_data: Mapping[str, Any] | None,
    extra_params: Mapping[str, Any] | None,
    images: Sequence[str] | None,
    auto_save_history: bool,
) -> Request:
    messages = [message_payload(m) for m in additional_messages or ()]
    # The query becomes the last user message (rather than the product document's `query`
    # shorthand) so that it lands after any additional messages and can carry images.
    if images:
        messages.append(_object_string(query, images))
    elif query is not None:
        messages.append({"role": "user", "content": query, "content_type": "text"})
    body = _drop_none(
        {
            "bot_id": wire_id(bot_id),
            "user_id": user_id,
            "stream": stream,
            "additional_messages": messages,
            "custom_variables": dict(custom_variables) if custom_variables else None,
            "meta_data": dict(meta_data) if meta_data else None,
            "extra_params": dict(extra_params) if extra_params else None,
            "auto_save_history": auto_save_history,
        }
    )
    # In the query string, as the official SDKs send it.
    params: Params | None = (
        {"conversation_id": wire_id(conversation_id)} if conversation_id is not None else None
    )
    return Request("POST", "/v3/chat", params=params, json=body)


def chat_answer(body: dict[str, Any]) -> ChatAnswer:
    return ChatAnswer.model_validate(_data(body))


def cancel_chat(conversation_id: Id, chat_id: Id | None) -> Call[Chat]:
    body = {"conversation_id": wire_id(conversation_id)}
    if chat_id is not None:
        body["chat_id"] = wire_id(chat_id)
    return Call(
        Request("POST", "/v3/chat/cancel", json=body),
        lambda b: Chat.model_validate(_data(b)),
    )


# ----------------------------------------------------------------------------------- bots


def get_bot(bot_id: Id, is_published: bool | None) -> Call[Bot]:
    params: Params | None = None
    if is_published is not None:
        params = {"is_published": "true" if is_published else "false"}
    return Call(
        Request("GET", f"/v1/bots/{wire_id(bot_id)}", params=params),
        lambda b: Bot.model_validate(_data(b)),
    )


def bot_online_info(bot_id: Id) -> Call[Bot]:
    return Call(
        Request("GET", "/v1/bot/get_online_info", params={"bot_id": wire_id(bot_id)}),
        lambda b: Bot.model_validate(_data(b)),
    )


def create_draft_bot(
    name: str,
    description: str | None,
    icon_url: str | None,
    prompt: str | None,
    model: str | None,
) -> Call[BotDraft]:
    body = _drop_none(
        {
            "name": name,
            "description": description,
            "icon_url": icon_url,
            "prompt": prompt,
            "model": model,
        }
    )
    return Call(
        Request("POST", "/api/draftbot/create", json=body),
        lambda b: BotDraft.model_validate(_data(b)),
    )


def update_bot_display_info(
    bot_id: Id,
    name: str | None,
    description: str | None,
    icon_url: str | None,
    prompt: str | None,
    model: str | None,
) -> Call[BotDisplayInfo]:
    body = _drop_none(
        {
            "bot_id": api_id(bot_id),
            "name": name,
            "description": description,
            "icon_url": icon_url,
            "prompt": prompt,
            "model": model,
        }
    )
    return Call(
        Request("POST", "/api/draftbot/update_display_info", json=body),
        lambda b: BotDisplayInfo.model_validate(_data(b)),
    )


def publish_bot(bot_id: Id) -> Call[BotPublished]:
    return Call(
        Request("POST", "/api/draftbot/publish", json={"bot_id": api_id(bot_id)}),
        lambda b: BotPublished.model_validate(_data(b)),
    )


def delete_bot(bot_id: Id) -> Call[None]:
    return Call(
        Request("POST", "/api/draftbot/delete", json={"bot_id": api_id(bot_id)}),
        lambda b: None,
    )


# -------------------------------------------------------------------------- conversations


def create_conversation(
    bot_id: Id | None,
    messages: Sequence[MessageInput] | None,
    meta_data: Mapping[str, Any] | None,
    name: str | None,
) -> Call[ConversationInfo]:
    body = _drop_none(
        {
            "bot_id": wire_id(bot_id) if bot_id is not None else None,
            "messages": [message_payload(m) for m in messages] if messages else None,
            "meta_data": dict(meta_data) if meta_data is not None else None,
            "name": name,
        }
    )
    return Call(
        Request("POST", "/v1/conversation/create", json=body),
        lambda b: ConversationInfo.model_validate(_data(b)),
    )


def retrieve_conversation(conversation_id: Id) -> Call[ConversationInfo]:
    return Call(
        Request(
            "GET", "/v1/conversation/retrieve", params={"conversation_id": wire_id(conversation_id)}
        ),
        lambda b: ConversationInfo.model_validate(_data(b)),
    )


def update_conversation(conversation_id: Id, name: str | None) -> Call[ConversationInfo]:
    return Call(
        Request("PUT", f"/v1/conversations/{wire_id(conversation_id)}", json={"name": name}),
        lambda b: ConversationInfo.model_validate(_data(b)),
    )


def clear_conversation(conversation_id: Id) -> Call[Section]:
    return Call(
        Request("POST", f"/v1/conversations/{wire_id(conversation_id)}/clear"),
        lambda b: Section.model_validate(_data(b)),
    )


def delete_conversation(conversation_id: Id) -> Call[None]:
    return Call(
        Request("DELETE", f"/v1/conversations/{wire_id(conversation_id)}"),
        lambda b: None,
    )


def list_conversations(
    bot_id: Id,
    page_num: int,
    page_size: int,
    sort_order: str = "desc",
    user_id: str | None = None,
) -> Call[Page[ConversationInfo]]:
    """One page by number; `Page.next` asks for the following number while `has_more`."""
    bot = wire_id(bot_id)

    def parse(body: dict[str, Any]) -> Page[ConversationInfo]:
        data = _data(body) or {}
        items = [ConversationInfo.model_validate(c) for c in data.get("conversations") or []]
        more = bool(data.get("has_more")) and bool(items)
        following = (
            list_conversations(bot, page_num + 1, page_size, sort_order, user_id) if more else None
        )
        return Page(items, following)

    params: Params = {
        "bot_id": bot,
        "page_num": page_num,
        "page_size": page_size,
        "sort_order": sort_order,
    }
    if user_id is not None:
        params["user_id"] = user_id
    return Call(Request("GET", "/v1/conversations", params=params), parse)


# -------------------------------------------------------------------------------- messages


def create_message(
    conversation_id: Id,
    role: str,
    content: str,
    content_type: str,
    meta_data: Mapping[str, Any] | None,
) -> Call[Message]:
    body = _drop_none(
        {
            "role": role,
            "content": content,
            "content_type": content_type,
            "meta_data": dict(meta_data) if meta_data is not None else None,
        }
    )
    return Call(
        Request(
            "POST",
            "/v1/conversation/message/create",
            params={"conversation_id": wire_id(conversation_id)},
            json=body,
        ),
        lambda b: Message.model_validate(_data(b)),
    )


def list_messages(
    conversation_id: Id,
    *,
    order: str,
    chat_id: Id | None,
    before_id: Id | None,
    after_id: Id | None,
    limit: int,
    seen_cursors: frozenset[str] = frozenset(),
) -> Call[Page[Message]]:
    """One page by cursor. As the Coze API defines the cursors, `after_id = last_id` is the
    next page in the listing's order and `before_id = first_id` the previous one; paging goes on
    in the direction the caller started in."""
    conversation = wire_id(conversation_id)
    backwards = before_id is not None and after_id is None

    def parse(body: dict[str, Any]) -> Page[Message]:
        items = [Message.model_validate(m) for m in _data(body) or []]
        cursor = str(body.get("first_id" if backwards else "last_id") or "")
        # A cursor seen before would loop forever on a server that ignores it; stop instead.
        more = bool(body.get("has_more")) and bool(items) and cursor not in ("", "0")
        if more and cursor in seen_cursors:
            raise CozeError(f"message paging repeated the cursor {cursor}; the server ignores it")
        following = None
        if more:
            following = list_messages(
                conversation,
                order=order,
                chat_id=chat_id,
                before_id=cursor if backwards else None,
                after_id=None if backwards else cursor,
                limit=limit,
                seen_cursors=seen_cursors | {cursor},
            )
        return Page(items, following)

    body = _drop_none(
        {
            "order": order,
            "chat_id": wire_id(chat_id) if chat_id is not None else None,
            "before_id": wire_id(before_id) if before_id is not None else None,
            "after_id": wire_id(after_id) if after_id is not None else None,
            "limit": limit,
        }
    )
    return Call(
        Request(
            "POST",
            "/v1/conversation/message/list",
            params={"conversation_id": conversation},
            json=body,
        ),
        parse,
    )


def _message_params(conversation_id: Id, message_id: Id) -> Params:
    return {"conversation_id": wire_id(conversation_id), "message_id": wire_id(message_id)}


def retrieve_message(conversation_id: Id, message_id: Id) -> Call[Message]:
    return Call(
        Request(
            "GET",
            "/v1/conversation/message/retrieve",
            params=_message_params(conversation_id, message_id),
        ),
        lambda b: Message.model_validate(_data(b)),
    )


def modify_message(
    conversation_id: Id,
    message_id: Id,
    content: str | None,
    content_type: str | None,
    meta_data: Mapping[str, Any] | None,
) -> Call[Message]:
    body = _drop_none(
        {
            "content": content,
            "content_type": content_type,
            "meta_data": dict(meta_data) if meta_data is not None else None,
        }
    )

    def parse(b: dict[str, Any]) -> Message:
        # The official API returns the modified message under "message", not "data".
        return Message.model_validate(b.get("message") or _data(b))

    return Call(
        Request(
            "POST",
            "/v1/conversation/message/modify",
            params=_message_params(conversation_id, message_id),
            json=body,
        ),
        parse,
    )


def delete_message(conversation_id: Id, message_id: Id) -> Call[Message]:
    return Call(
        Request(
            "POST",
            "/v1/conversation/message/delete",
            params=_message_params(conversation_id, message_id),
        ),
        lambda b: Message.model_validate(_data(b)),
    )
