"""Turn a bot, the conversation's history and the new messages into a model prompt.

Stored tool traces become the model's native format: a run of function_call messages is one
assistant message with tool_calls, each tool_response a `tool` message naming its call
(wire contract section 7). The API refuses unanswered calls and orphan outputs, so a call
left without an output (a chat that ended mid-round) gets a note, and an output whose call
is not in the window is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import orjson

from cozeplus.chat_protocol import InputMessage
from cozeplus.message_content import ContentError, ContentPart, parse_content, with_file_urls
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.vocabulary import MessageType
from services.runner.providers.base import (
    ChatPart,
    FilePart,
    ImagePart,
    PromptMessage,
    Role,
    TextPart,
)
from services.runner.tools.base import ToolCall

# Coze's variable syntax in prompts: {{name}}.
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
# Only the conversation and its tool traces go to the model, not suggestions or verbose notes.
_CONVERSATION_TYPES = frozenset({MessageType.QUESTION, MessageType.ANSWER, ""})
NO_TOOL_OUTPUT = "(no output: the chat ended before this tool answered)"
_NO_URLS: Mapping[str, str] = {}


def render_system_prompt(
    prompt: str, variables: Iterable[pb.Variable], custom: Mapping[str, str]
) -> str:
    """Substitute `{{name}}` with the caller's value, else the bot's default.

    Unknown names stay as written: a literal `{{...}}` in a prompt must survive.
    """
    values = {v.key: v.default_value for v in variables}
    values.update(custom)

    def substitute(match: re.Match[str]) -> str:
        return values.get(match.group(1), match.group(0))

    return _VARIABLE.sub(substitute, prompt)


def _parts(
    content: str, content_type: str, message_type: str, file_urls: Mapping[str, str] = _NO_URLS
) -> list[ChatPart]:
    try:
        parsed = parse_content(content, content_type, message_type)
    except ContentError:
        # Stored before validation was this strict: show the model the raw text.
        parsed = [ContentPart("text", text=content)]
    # Images named by file id become the data URLs gathered for a vision model; the
    # others stay notes naming the file id.
    parsed = with_file_urls(parsed, file_urls)
    parts: list[ChatPart] = []
    for part in parsed:
        if part.kind == "text":
            parts.append(TextPart(part.text))
        elif part.kind == "image" and part.url:
            parts.append(ImagePart(part.url))
        elif part.kind == "image":
            # A file id nobody resolved (no vision, not the owner's, too large, unreadable):
            # a note, never an image part a provider would refuse as a bad URL.
            parts.append(TextPart(f"[image: {part.file_id}]"))
        else:
            parts.append(FilePart(part.url or part.file_id))
    return parts


def _role(role: str) -> Role:
    return "assistant" if role == "assistant" else "user"


def tool_call_of(message: cpb.Message) -> ToolCall | None:
    """The call a stored function_call message records (its content is section 7's JSON)."""
    try:
        content = orjson.loads(message.content)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(content, dict) or not content.get("name"):
        return None
    arguments = content.get("arguments", {})
    return ToolCall(
        id=str(content.get("tool_call_id") or f"call_{message.id}"),
        name=str(content["name"]),
        arguments=arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode(),
    )


def _answered_call_id(message: cpb.Message) -> str:
    try:
        meta = orjson.loads(message.meta_data_json) if message.meta_data_json else {}
    except orjson.JSONDecodeError:
        return ""
    return str(meta.get("tool_call_id", "")) if isinstance(meta, dict) else ""


def stored_messages(
    stored: Iterable[cpb.Message], file_urls: Mapping[str, str] = _NO_URLS
) -> list[PromptMessage]:
    """Stored messages (history, or a resumed chat's own) as prompt messages."""
    out: list[PromptMessage] = []
    calls: list[ToolCall] = []
    outputs: dict[str, str] = {}
    # What the model said before the round of calls being gathered (see below).
    said: tuple[ChatPart, ...] = ()
    # The chat of the last message in `out` when that is an answer, else None.
    answer_of_chat: int | None = None

    def close_round() -> None:
        nonlocal said
        if not calls:
            return
        out.append(PromptMessage("assistant", said, tool_calls=tuple(calls)))
        for call in calls:
            out.append(PromptMessage.tool(call.id, outputs.get(call.id, NO_TOOL_OUTPUT)))
        calls.clear()
        outputs.clear()
        said = ()

    for message in stored:
        if message.type == MessageType.FUNCTION_CALL:
            if outputs:
                close_round()  # a new round of calls after the last one's outputs
            if not calls and answer_of_chat == message.chat_id:
                # The answer the model said right before this round, in the same chat: the
                # model returned it beside the calls, so it goes back that way.
                said = tuple(out.pop().parts)
            answer_of_chat = None
            call = tool_call_of(message)
            if call is not None:
                calls.append(call)
        elif message.type == MessageType.TOOL_RESPONSE:
            answer_of_chat = None
            call_id = _answered_call_id(message)
            if any(c.id == call_id for c in calls):
                outputs[call_id] = message.content
        elif message.type in _CONVERSATION_TYPES and message.content:
            close_round()
            out.append(
                PromptMessage(
                    _role(message.role),
                    _parts(
                        message.content,
                        message.content_type,
                        message.type,
                        file_urls if message.role == "user" else _NO_URLS,
                    ),
                )
            )
            is_answer = message.type == MessageType.ANSWER and message.role == "assistant"
            answer_of_chat = message.chat_id if is_answer else None
    close_round()
    return out


def with_text_before_last_calls(prompt: list[PromptMessage], text: str) -> list[PromptMessage]:
    """A resumed run's prompt, with what the model said before the round it paused on (kept
    by the registry with the pause) on that round's assistant message, as the run itself
    had it. For runs paused by runners that kept that text with the pause rather than as an
    answer message (which `stored_messages` puts beside the calls itself). A prompt with no
    such round, or whose round has text, is left as it is."""
    if not text:
        return prompt
    for index in range(len(prompt) - 1, -1, -1):
        message = prompt[index]
        if message.role == "assistant" and message.tool_calls:
            if message.parts:
                return prompt
            said = PromptMessage("assistant", (TextPart(text),), tool_calls=message.tool_calls)
            return [*prompt[:index], said, *prompt[index + 1 :]]
    return prompt


def build_prompt(
    config: pb.BotConfig,
    history: Iterable[cpb.Message],
    new_messages: Iterable[InputMessage],
    custom_variables: Mapping[str, str],
    chat_messages: Iterable[cpb.Message] = (),
    *,
    knowledge: str = "",
    file_urls: Mapping[str, str] = _NO_URLS,
) -> list[PromptMessage]:
    """`new_messages` for a new chat; a resumed one passes its stored `chat_messages`.

    `knowledge` (the rendered knowledge section) goes at the end of the one system message,
    after the bot's prompt: several OpenAI-compatible servers' chat templates refuse a
    second system message. `file_urls` maps file ids to the data URLs a vision model sees.
    """
    messages: list[PromptMessage] = []
    system = render_system_prompt(config.prompt, config.variables, custom_variables)
    system = "\n\n".join(s for s in (system, knowledge) if s)
    if system:
        messages.append(PromptMessage.text("system", system))
    messages.extend(stored_messages(history, file_urls))
    for new in new_messages:
        urls = file_urls if new.role == "user" else _NO_URLS
        parts = _parts(new.content, new.content_type, new.type, urls)
        messages.append(PromptMessage(_role(new.role), parts))
    messages.extend(stored_messages(chat_messages, file_urls))
    return messages
