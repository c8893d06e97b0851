"""Turn a bot, the conversation's history and the new messages into a model prompt."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from cozeplus.chat_protocol import InputMessage
from cozeplus.message_content import ContentError, ContentPart, parse_content
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import registry_pb2 as pb
from services.runner.providers.base import (
    ChatPart,
    FilePart,
    ImagePart,
    PromptMessage,
    Role,
    TextPart,
)

# Coze's variable syntax in prompts: {{name}}.
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
# Only the conversation itself goes to the model, not tool traces or suggestions.
_CONVERSATION_TYPES = frozenset({"question", "answer", ""})


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


def _parts(content: str, content_type: str, message_type: str) -> list[ChatPart]:
    try:
        parsed = parse_content(content, content_type, message_type)
    except ContentError:
        # Stored before validation was this strict: show the model the raw text.
        parsed = [ContentPart("text", text=content)]
    parts: list[ChatPart] = []
    for part in parsed:
        if part.kind == "text":
            parts.append(TextPart(part.text))
        elif part.kind == "image":
            parts.append(ImagePart(part.url or part.file_id))
        else:
            parts.append(FilePart(part.url or part.file_id))
    return parts


def _role(role: str) -> Role:
    return "assistant" if role == "assistant" else "user"


def build_prompt(
    config: pb.BotConfig,
    history: Iterable[cpb.Message],
    new_messages: Iterable[InputMessage],
    custom_variables: Mapping[str, str],
) -> list[PromptMessage]:
    messages: list[PromptMessage] = []
    system = render_system_prompt(config.prompt, config.variables, custom_variables)
    if system:
        messages.append(PromptMessage.text("system", system))
    for old in history:
        if old.type in _CONVERSATION_TYPES and old.content:
            messages.append(
                PromptMessage(_role(old.role), _parts(old.content, old.content_type, old.type))
            )
    for new in new_messages:
        parts = _parts(new.content, new.content_type, new.type)
        messages.append(PromptMessage(_role(new.role), parts))
    return messages
