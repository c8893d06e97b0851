from __future__ import annotations

from cozeplus.chat_protocol import InputMessage
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import registry_pb2 as pb
from services.runner.prompt import (
    NO_TOOL_OUTPUT,
    build_prompt,
    render_system_prompt,
    stored_messages,
    with_text_before_last_calls,
)
from services.runner.providers.base import ImagePart, PromptMessage, TextPart
from services.runner.tools.base import ToolCall


def test_variables_use_caller_value_then_default_and_keep_unknown_names() -> None:
    variables = [pb.Variable(key="name", default_value="guest"), pb.Variable(key="lang")]
    prompt = "Hi {{name}}, answer in {{ lang }}. Literal: {{unknown}}"
    assert render_system_prompt(prompt, variables, {"lang": "fr"}) == (
        "Hi guest, answer in fr. Literal: {{unknown}}"
    )


def test_prompt_orders_system_history_and_new_messages_with_images() -> None:
    config = pb.BotConfig(prompt="You are {{role}}.")
    history = [
        cpb.Message(role="user", type="question", content="q1", content_type="text"),
        cpb.Message(role="assistant", type="answer", content="a1", content_type="text"),
        cpb.Message(role="assistant", type="verbose", content="tool trace", content_type="text"),
    ]
    new = [
        InputMessage(
            role="user",
            content='[{"type":"text","text":"look"},{"type":"image","file_url":"https://i/1.png"}]',
            content_type="object_string",
        )
    ]
    messages = build_prompt(config, history, new, {"role": "a pirate"})
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0].text_content == "You are a pirate."
    assert list(messages[3].parts) == [TextPart("look"), ImagePart("https://i/1.png")]


def test_empty_prompt_sends_no_system_message() -> None:
    messages = build_prompt(pb.BotConfig(), [], [InputMessage(role="user", content="hi")], {})
    assert [m.role for m in messages] == ["user"]


def test_text_said_before_the_paused_round_goes_on_its_calls_only_when_they_have_none() -> None:
    first = PromptMessage("assistant", (), tool_calls=(ToolCall("c1", "a", "{}"),))
    last = PromptMessage("assistant", (), tool_calls=(ToolCall("c2", "b", "{}"),))
    prompt = [PromptMessage.text("user", "go"), first, PromptMessage.tool("c1", "x"), last]

    said = with_text_before_last_calls(prompt, "Checking.")

    assert said[1] is first  # earlier rounds as they were
    assert said[3].text_content == "Checking." and said[3].tool_calls == last.tool_calls
    assert with_text_before_last_calls(said, "again") == said  # has text: left alone
    assert with_text_before_last_calls(prompt, "") == prompt
    no_calls = [PromptMessage.text("user", "go")]
    assert with_text_before_last_calls(no_calls, "Checking.") == no_calls


def test_an_answer_right_before_its_chats_calls_goes_beside_them() -> None:
    def message(chat_id: int, kind: str, content: str, role: str = "assistant") -> cpb.Message:
        return cpb.Message(chat_id=chat_id, role=role, type=kind, content=content)

    call = '{"name":"t","arguments":{},"tool_call_id":"c1"}'
    answered = message(2, "tool_response", "out", role="assistant")
    answered.meta_data_json = '{"tool_call_id":"c1"}'
    history = [
        message(1, "question", "q1", role="user"),
        message(1, "answer", "a1"),
        # Chat 2 saved no question: chat 1's answer is not chat 2's to carry.
        message(2, "function_call", call),
        answered,
        message(2, "answer", "Let me check again."),
        message(2, "function_call", call.replace("c1", "c2")),
        message(2, "answer", "done"),
    ]

    prompt = stored_messages(history)

    assert [(m.role, m.text_content, bool(m.tool_calls)) for m in prompt] == [
        ("user", "q1", False),
        ("assistant", "a1", False),
        ("assistant", "", True),
        ("tool", "out", False),
        ("assistant", "Let me check again.", True),
        ("tool", NO_TOOL_OUTPUT, False),
        ("assistant", "done", False),
    ]
