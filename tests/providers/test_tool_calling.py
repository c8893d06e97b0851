"""Native tool calling through the OpenAI-compatible provider, against the mock's scripted
tool calls over real HTTP: the tools in the request, streamed call fragments joined into
whole ToolCalls, assistant tool_calls and `tool` messages in the prompt."""

from __future__ import annotations

import httpx
import orjson

from services.runner.providers import Completion, CompletionRequest, PromptMessage, TextDelta
from services.runner.providers.echo import EchoProvider
from services.runner.tools.base import ToolCall, ToolDefinition
from tests.providers.conftest import MockServer
from tests.providers.test_openai_compat_provider import provider, run

WEATHER = ToolDefinition(
    "get_weather",
    "Weather of a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


async def script(server: MockServer, key: str, rounds: list[dict[str, object]]) -> None:
    async with httpx.AsyncClient() as client:
        reply = await client.post(f"{server.url}/mock/scripts", json={"key": key, "rounds": rounds})
        reply.raise_for_status()


async def test_streamed_tool_call_fragments_become_whole_calls(mock_server: MockServer) -> None:
    await script(
        mock_server,
        "[weather-1]",
        [
            {
                "tool_calls": [
                    {"name": "get_weather", "arguments": {"city": "Paris"}},
                    {"name": "get_weather", "arguments": {"city": "Lyon, France"}},
                ]
            }
        ],
    )
    request = CompletionRequest(
        messages=[PromptMessage.text("system", "[weather-1]"), PromptMessage.text("user", "hi")],
        tools=[WEATHER],
    )

    items = await run(provider(mock_server.v1), request)

    calls = [i for i in items if isinstance(i, ToolCall)]
    assert [(c.name, orjson.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Lyon, France"}),
    ]
    assert len({c.id for c in calls}) == 2 and all(c.id.startswith("call_mock_") for c in calls)
    completion = items[-1]
    assert isinstance(completion, Completion) and completion.finish_reason == "tool_calls"
    assert completion.usage.completion_tokens > 0
    sent = mock_server.last_body()
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather of a city",
                "parameters": WEATHER.parameters,
            },
        }
    ]


async def test_calls_and_outputs_go_back_in_native_form(mock_server: MockServer) -> None:
    await script(
        mock_server, "[weather-2]", [{"tool_calls": []}, {"reply": "It is {tool_output}."}]
    )
    call = ToolCall(id="call_9", name="get_weather", arguments='{"city":"Paris"}')
    request = CompletionRequest(
        messages=[
            PromptMessage.text("system", "[weather-2]"),
            PromptMessage.text("user", "weather?"),
            PromptMessage("assistant", (), tool_calls=(call,)),
            PromptMessage.tool("call_9", "sunny"),
        ],
        tools=[WEATHER],
    )

    items = await run(provider(mock_server.v1), request)

    assert "".join(i.text for i in items if isinstance(i, TextDelta)) == "It is sunny."
    sent = mock_server.last_body()["messages"]
    assert sent[2:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": "sunny"},
    ]


async def test_no_tools_no_tools_field(mock_server: MockServer) -> None:
    await run(
        provider(mock_server.v1), CompletionRequest(messages=[PromptMessage.text("user", "x")])
    )
    assert "tools" not in mock_server.last_body()


async def test_the_echo_model_ignores_tools() -> None:
    from cozeplus.model_catalog import ModelSpec

    echo = EchoProvider(ModelSpec(id="echo", provider="echo"))
    items = [
        i
        async for i in echo.stream(
            CompletionRequest(messages=[PromptMessage.text("user", "hi")], tools=[WEATHER])
        )
    ]
    assert not [i for i in items if isinstance(i, ToolCall)]
    assert "".join(i.text for i in items if isinstance(i, TextDelta)) == "Echo: hi"


async def test_a_bad_script_is_a_400(mock_server: MockServer) -> None:
    async with httpx.AsyncClient() as client:
        bad = await client.post(f"{mock_server.url}/mock/scripts", json={"key": "k"})
    assert bad.status_code == 400
    assert "bad script" in bad.json()["error"]["message"]


async def test_text_before_the_calls_comes_first_in_the_same_answer(
    mock_server: MockServer,
) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    await script(mock_server, "[weather-3]", [{"reply": "Let me check.", "tool_calls": [call]}])
    request = CompletionRequest(
        messages=[PromptMessage.text("system", "[weather-3]"), PromptMessage.text("user", "hi")],
        tools=[WEATHER],
    )

    items = await run(provider(mock_server.v1), request)

    text = "".join(i.text for i in items if isinstance(i, TextDelta))
    assert text == "Let me check."
    first_call = next(n for n, i in enumerate(items) if isinstance(i, ToolCall))
    assert all(not isinstance(i, TextDelta) for i in items[first_call:])
    calls = [i for i in items if isinstance(i, ToolCall)]
    assert [(c.name, orjson.loads(c.arguments)) for c in calls] == [
        ("get_weather", call["arguments"])
    ]
    completion = items[-1]
    assert isinstance(completion, Completion) and completion.finish_reason == "tool_calls"
    # The text's three tokens count, as well as the arguments'.
    assert completion.usage.completion_tokens >= 3 + 1

    # Not streamed: the same text as the message's content beside its calls.
    async with httpx.AsyncClient() as client:
        whole = await client.post(
            f"{mock_server.v1}/chat/completions",
            json={"model": "mock", "messages": request_messages("[weather-3]")},
        )
    message = whole.json()["choices"][0]["message"]
    assert message["content"] == "Let me check."
    assert message["tool_calls"][0]["function"]["name"] == "get_weather"


def request_messages(key: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": key}, {"role": "user", "content": "hi"}]
