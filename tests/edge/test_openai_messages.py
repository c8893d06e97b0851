"""How OpenAI chat messages become a bot chat's input, in process (no server)."""

from __future__ import annotations

import json

import pytest

from services.edge.errors import ApiError
from services.edge.routes.openai_compat import input_messages, usage_of
from services.edge.schemas.openai_compat import ChatCompletionRequest


def request(*messages: dict[str, object]) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "1", "messages": list(messages)})


def test_system_developer_and_tool_messages_are_left_to_the_bot() -> None:
    got = input_messages(
        request(
            {"role": "system", "content": "be terse"},
            {"role": "developer", "content": "also terse"},
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": None},
            {"role": "tool", "content": "42"},
            {"role": "assistant", "content": "a1"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "q"}, {"type": "text", "text": "2"}],
            },
        )
    )
    assert [(m.role, m.type, m.content, m.content_type) for m in got] == [
        ("user", "question", "q1", "text"),
        ("assistant", "answer", "a1", "text"),
        ("user", "question", "q2", "text"),
    ]


def test_image_parts_become_an_object_string_message() -> None:
    [message] = input_messages(
        request(
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                ],
            }
        )
    )
    assert message.content_type == "object_string"
    assert json.loads(message.content) == [
        {"type": "text", "text": "what is this?"},
        {"type": "image", "file_url": "https://example.com/a.png"},
    ]


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "assistant", "content": "only me"}],
        [{"role": "system", "content": "only a system prompt"}],
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        [{"role": "user", "content": "   "}],
    ],
)
def test_refused_inputs(messages: list[dict[str, object]]) -> None:
    with pytest.raises(ApiError) as refused:
        input_messages(request(*messages))
    assert refused.value.status == 400


def test_usage_totals_prompt_and_completion() -> None:
    chat = {"usage": {"prompt_tokens": 7, "completion_tokens": 5, "token_count": 12}}
    assert usage_of(chat) == {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
    assert usage_of({}) == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
