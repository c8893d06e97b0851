"""Request limits that come from configuration (EdgeSettings.max_*).

Types and shapes are checked by the pydantic schemas while the body is parsed; sizes that an
operator may tune are checked here, by the route, once it has the parsed body. Every refusal
is a 400 whose message names the field, like a validation error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.edge.core.errors import InvalidInput
from services.edge.schemas.chat import ChatMessageIn, ChatOptions
from services.edge.settings import EdgeSettings

# Keys are client text: quoted and cut short in messages.
_SHOWN_KEY_CHARS = 40


def _invalid(field: str, problem: str) -> InvalidInput:
    return InvalidInput(f"invalid {field}: {problem}")


def _shown(key: str) -> str:
    return repr(key if len(key) <= _SHOWN_KEY_CHARS else key[:_SHOWN_KEY_CHARS] + "…")


@dataclass(frozen=True, slots=True)
class RequestLimits:
    max_chat_messages: int
    max_content_chars: int
    max_custom_variables: int
    max_custom_variables_bytes: int
    max_meta_data_pairs: int
    max_meta_data_key_chars: int
    max_meta_data_value_chars: int

    @classmethod
    def from_settings(cls, settings: EdgeSettings) -> RequestLimits:
        return cls(
            max_chat_messages=settings.max_chat_messages,
            max_content_chars=settings.max_content_chars,
            max_custom_variables=settings.max_custom_variables,
            max_custom_variables_bytes=settings.max_custom_variables_bytes,
            max_meta_data_pairs=settings.max_meta_data_pairs,
            max_meta_data_key_chars=settings.max_meta_data_key_chars,
            max_meta_data_value_chars=settings.max_meta_data_value_chars,
        )

    def content(self, field: str, value: str | None) -> None:
        if value is not None and len(value) > self.max_content_chars:
            raise _invalid(
                field, f"at most {self.max_content_chars} characters allowed, got {len(value)}"
            )

    def meta_data(self, field: str, value: Mapping[str, str] | None) -> None:
        if not value:
            return
        if len(value) > self.max_meta_data_pairs:
            raise _invalid(
                field, f"at most {self.max_meta_data_pairs} pairs allowed, got {len(value)}"
            )
        for key, item in value.items():
            if not 0 < len(key) <= self.max_meta_data_key_chars:
                raise _invalid(
                    field,
                    f"keys must be 1 to {self.max_meta_data_key_chars} characters, "
                    f"got {len(key)} in {_shown(key)}",
                )
            if len(item) > self.max_meta_data_value_chars:
                raise _invalid(
                    field,
                    f"the value of {_shown(key)} must be at most "
                    f"{self.max_meta_data_value_chars} characters, got {len(item)}",
                )

    def message(self, field: str, message: ChatMessageIn) -> None:
        """One message's content and meta data; `field` is where it sits (e.g. `messages[3]`)."""
        self.content(f"{field}.content" if field else "content", message.content)
        self.meta_data(f"{field}.meta_data" if field else "meta_data", message.meta_data)

    def messages(self, field: str, messages: Sequence[ChatMessageIn]) -> None:
        for index, message in enumerate(messages):
            self.message(f"{field}[{index}]", message)

    def custom_variables(self, field: str, value: Mapping[str, str]) -> None:
        if len(value) > self.max_custom_variables:
            raise _invalid(
                field, f"at most {self.max_custom_variables} variables allowed, got {len(value)}"
            )
        size = sum(len(k.encode()) + len(v.encode()) for k, v in value.items())
        if size > self.max_custom_variables_bytes:
            raise _invalid(
                field,
                f"names and values together must be at most {self.max_custom_variables_bytes} "
                f"bytes (UTF-8), got {size}",
            )

    def chat(self, body: ChatOptions, query: str | None) -> None:
        """A /v3/chat or /api/conversation/chat request."""
        count = len(body.additional_messages)
        if query is not None and query.strip():
            # The shorthand becomes one more message of the run.
            count += 1
        if count > self.max_chat_messages:
            raise _invalid(
                "additional_messages",
                f"at most {self.max_chat_messages} messages allowed (the query counts as one), "
                f"got {count}",
            )
        self.messages("additional_messages", body.additional_messages)
        self.content("query", query)
        self.custom_variables("custom_variables", body.custom_variables)
        self.meta_data("meta_data", body.meta_data)
