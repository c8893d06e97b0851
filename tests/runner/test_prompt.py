from __future__ import annotations

from cozeplus.chat_protocol import InputMessage
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import registry_pb2 as pb
from services.runner.prompt import build_prompt, render_system_prompt
from services.runner.providers.base import ImagePart, TextPart


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
