"""Chats whose model calls plugin tools, end to end (wire contract section 7): real registry,
edge, runner and mock model over HTTP, a real local HTTP API behind an OpenAPI plugin and a
real MCP server; cozepy judges the wire shapes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cozepy import ChatEventType, ChatStatus, Coze, Message, MessageType, TokenAuth

from services.cli.system import ServiceProcess
from tests.chat.plugin_bots import API_SECRET, PluginServers
from tests.conftest import Account

MakeBot = Callable[[list[dict[str, Any]]], tuple[str, dict[str, str]]]


def coze_for(chat_system: str, account: Account) -> Coze:
    return Coze(auth=TokenAuth(account.token), base_url=chat_system)


def test_an_openapi_tool_answers_through_cozepy(
    chat_system: str,
    account: Account,
    make_plugin_bot: MakeBot,
    plugin_servers: PluginServers,
    runner: ServiceProcess,
    registry: ServiceProcess,
    edge: ServiceProcess,
) -> None:
    bot_id, plugin_ids = make_plugin_bot(
        [
            {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris", "units": "c"}}]},
            {"reply": "Weather: {tool_output}"},
        ]
    )
    before = len(plugin_servers.calls.requests)
    coze = coze_for(chat_system, account)
    chat = coze.chat.create_and_poll(
        bot_id=bot_id, user_id="u1", additional_messages=[Message.build_user_question_text("hi")]
    )
    assert chat.chat.status == ChatStatus.COMPLETED, chat.chat.last_error
    messages = [m for m in chat.messages if m.type != MessageType.QUESTION]
    types = [m.type for m in messages]
    assert types == [MessageType.FUNCTION_CALL, MessageType.TOOL_RESPONSE, MessageType.ANSWER]
    call = json.loads(messages[0].content)
    assert call["name"] == "get_weather" and call["arguments"] == {"city": "Paris", "units": "c"}
    assert call["plugin_id"] == plugin_ids["weather"] and call["api_id"].isdigit()
    assert call["tool_call_id"]
    assert json.loads(messages[1].content) == {"city": "Paris", "temp_c": 21, "units": "c"}
    assert '"temp_c": 21' in messages[2].content
    # The real API received the call, with the plugin's key.
    [received] = plugin_servers.calls.requests[before:]
    assert received["path"] == "/weather/Paris"
    assert received["query"] == {"units": "c", "key": API_SECRET}
    # The key is in no message and no log line.
    assert all(API_SECRET not in m.content for m in chat.messages)
    for process in (runner, registry, edge):
        assert API_SECRET not in Path(process.log_path).read_text(), process.name


def test_mcp_tools_in_a_streamed_chat_share_one_session_that_ends_with_the_run(
    chat_system: str, account: Account, make_plugin_bot: MakeBot, plugin_servers: PluginServers
) -> None:
    bot_id, _ = make_plugin_bot(
        [
            {"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 40}}]},
            {"tool_calls": [{"name": "add", "arguments": {"a": 42, "b": 1}}]},
            {"reply": "= {tool_output}"},
        ]
    )
    seen = plugin_servers.mcp_seen
    opened = seen.sessions_opened()
    coze = coze_for(chat_system, account)
    completed: list[Any] = []
    answer = ""
    for event in coze.chat.stream(
        bot_id=bot_id, user_id="u1", additional_messages=[Message.build_user_question_text("2+40?")]
    ):
        if event.event == ChatEventType.CONVERSATION_MESSAGE_COMPLETED:
            completed.append(event.message)
        if event.event == ChatEventType.CONVERSATION_MESSAGE_DELTA:
            answer += event.message.content
    assert [m.type for m in completed][:4] == [
        MessageType.FUNCTION_CALL,
        MessageType.TOOL_RESPONSE,
    ] * 2
    assert json.loads(completed[0].content)["name"] == "add"
    assert (completed[1].content, completed[3].content) == ("42", "43")
    assert answer == "= 43"
    # Two rounds, one handshake; the session ends (DELETE) once the run is over.
    assert seen.sessions_opened() == opened + 1
    session = next(s for _, s in reversed(seen.requests) if s)
    deadline = time.monotonic() + 10
    while session not in seen.sessions_ended() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session in seen.sessions_ended()


def test_tool_errors_hangs_huge_outputs_and_refused_redirects_do_not_fail_the_chat(
    chat_system: str, account: Account, make_plugin_bot: MakeBot, plugin_servers: PluginServers
) -> None:
    bot_id, _ = make_plugin_bot(
        [
            {
                "tool_calls": [
                    {"name": "always_fails", "arguments": {}},
                    {"name": "hangs", "arguments": {}},
                    {"name": "huge_answer", "arguments": {}},
                    {"name": "redirects_away", "arguments": {}},
                    {"name": "explode", "arguments": {}},
                ]
            },
            {"reply": "done"},
        ]
    )
    coze = coze_for(chat_system, account)
    chat = coze.chat.create_and_poll(
        bot_id=bot_id, user_id="u1", additional_messages=[Message.build_user_question_text("go")]
    )
    assert chat.chat.status == ChatStatus.COMPLETED, chat.chat.last_error
    calls = {
        m.content and json.loads(m.content)["tool_call_id"]: json.loads(m.content)["name"]
        for m in chat.messages
        if m.type == MessageType.FUNCTION_CALL
    }
    outputs = {
        calls[m.meta_data["tool_call_id"]]: m.content
        for m in chat.messages
        if m.type == MessageType.TOOL_RESPONSE
    }
    assert set(outputs) == {"always_fails", "hangs", "huge_answer", "redirects_away", "explode"}
    assert "HTTP 500" in outputs["always_fails"] and "boom" in outputs["always_fails"]
    assert "timed out" in outputs["hangs"]
    assert "output cut" in outputs["huge_answer"] and len(outputs["huge_answer"]) < 100_000
    assert "refused by the outbound rules" in outputs["redirects_away"]
    assert "127.0.0.2" in outputs["redirects_away"]
    assert "Error executing tool explode" in outputs["explode"]
    assert [m.content for m in chat.messages if m.type == MessageType.ANSWER] == ["done"]
    assert not plugin_servers.refused.was_contacted()
