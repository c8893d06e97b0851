"""The agent loop end to end: real NATS, registry, edge, runners and the mock model over HTTP,
judged by cozepy (wire contract section 7).

The module runs its own system (its own NATS, registry, edge and runners), so it may kill
every runner. Tools are local plugins created through /v1/plugins (the registry's Plugins
service); the model's tool calls are scripted through the mock's /mock/scripts.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cozepy import (
    Chat,
    ChatEvent,
    ChatEventType,
    ChatStatus,
    Coze,
    Message,
    TokenAuth,
    ToolOutput,
)

from cozeplus.embedded_nats import EmbeddedNats
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1.registry_pb2_grpc import AccountsStub
from cozeplus.service_auth import service_channel
from services.cli.system import (
    ServiceProcess,
    edge_process,
    free_port,
    registry_process,
    runner_process,
)
from tests.clients.test_coze_api_js import (  # noqa: F401 (coze_js: the installed SDK)
    coze_js,
    run_sdk_script,
)
from tests.conftest import RUNNER_TEST_ENV

LOCATION_SCHEMA = {"type": "object", "properties": {"precision": {"type": "string"}}}


class System:
    def __init__(self, root: Path, mock_url: str, models_file: Path) -> None:
        self.root = root
        self.mock_url = mock_url
        self.models_file = models_file
        self.services: list[ServiceProcess] = []
        self.runners: list[ServiceProcess] = []

    def start(self, service: ServiceProcess) -> ServiceProcess:
        service.start()
        self.services.append(service)
        service.wait_ready()
        return service

    def start_runner(self) -> ServiceProcess:
        runner = self.start(
            runner_process(
                health_port=free_port(),
                registry_addr=self.registry_addr,
                nats_url=self.nats_url,
                log_dir=self.root / "logs",
                name=f"runner-{len(self.runners)}",
                extra_env={
                    "COZEPLUS_RUNNER_MODELS_FILE": str(self.models_file),
                    **RUNNER_TEST_ENV,
                },
            )
        )
        self.runners.append(runner)
        return runner

    nats_url = ""
    registry_addr = ""
    edge_url = ""
    grpc_addr = ""


@pytest.fixture(scope="module")
def system(
    tmp_path_factory: pytest.TempPathFactory,
    mock_llm: str,
    models_file: Path,
) -> Iterator[System]:
    root = tmp_path_factory.mktemp("tools")
    with EmbeddedNats(root / "nats") as nats:
        s = System(root, mock_llm, models_file)
        s.nats_url = nats.url
        try:
            registry = s.start(
                registry_process(
                    data_dir=root / "registry",
                    port=free_port(),
                    nats_url=nats.url,
                    log_dir=root / "logs",
                    extra_env={
                        "COZEPLUS_REGISTRY_MODELS_FILE": str(models_file),
                        "COZEPLUS_REGISTRY_RUN_SWEEP_INTERVAL_S": "0.2",
                    },
                )
            )
            s.registry_addr = registry.env["COZEPLUS_REGISTRY_LISTEN"]
            grpc_port = free_port()
            edge = s.start(
                edge_process(
                    port=free_port(),
                    registry_addr=s.registry_addr,
                    nats_url=nats.url,
                    log_dir=root / "logs",
                    extra_env={
                        # The public gRPC API too (tests/grpc_api/test_grpc_tools.py).
                        "COZEPLUS_EDGE_GRPC_PORT": str(grpc_port),
                        # One account makes every test's plugin, bot and chats within a
                        # minute: more than the per-account limits (tests/ratelimit).
                        "COZEPLUS_EDGE_RATE_LIMIT_BOT_MANAGEMENT": "1000",
                        "COZEPLUS_EDGE_RATE_LIMIT_CHAT": "1000",
                    },
                )
            )
            s.edge_url = f"http://127.0.0.1:{edge.env['COZEPLUS_EDGE_PORT']}"
            s.grpc_addr = f"127.0.0.1:{grpc_port}"
            s.start_runner()
            yield s
        finally:
            for service in reversed(s.services):
                service.stop()


@pytest.fixture(scope="module")
def token(system: System) -> str:
    with service_channel(system.registry_addr) as channel:
        accounts = AccountsStub(channel)
        user = accounts.CreateUser(
            pb.CreateUserRequest(
                username=f"u_{secrets.token_hex(4)}", password="pw-" + secrets.token_hex(8)
            )
        )
        created = accounts.CreateApiKey(pb.CreateApiKeyRequest(user_id=user.id, name="t"))
        return created.token


@pytest.fixture(scope="module")
def coze(system: System, token: str) -> Coze:
    return Coze(auth=TokenAuth(token), base_url=system.edge_url)


@pytest.fixture(scope="module")
def http(system: System, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=system.edge_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        yield client


@pytest.fixture
def make_tool_bot(system: System, http: httpx.Client) -> Callable[..., tuple[str, str]]:
    """A published bot on the mock model with local functions and a scripted model; returns
    (bot id, the script key in its prompt)."""

    def make(rounds: list[dict[str, Any]], max_tool_rounds: int | None = None) -> tuple[str, str]:
        key = f"script-{secrets.token_hex(6)}"
        # A real local plugin: the registry refuses to bind unknown plugin ids.
        plugin = http.post(
            "/v1/plugins",
            json={
                "name": "device",
                "type": "local",
                "functions": [
                    {"name": "get_location", "parameters": LOCATION_SCHEMA},
                    {"name": "get_weather", "parameters": {"type": "object"}},
                ],
            },
        )
        assert plugin.status_code == 200, plugin.text
        body: dict[str, Any] = {
            "name": "tool bot",
            "prompt": f"You use tools. [{key}]",
            "model": "mock",
            "tools": [{"type": "plugin", "plugin_id": plugin.json()["data"]["plugin_id"]}],
        }
        if max_tool_rounds is not None:
            body["max_tool_rounds"] = max_tool_rounds
        created = http.post("/api/draftbot/create", json=body)
        assert created.status_code == 200, created.text
        bot_id = int(created.json()["data"]["bot_id"])
        assert http.post("/api/draftbot/publish", json={"bot_id": bot_id}).status_code == 200
        scripted = httpx.post(
            f"{system.mock_url}/mock/scripts", json={"key": key, "rounds": rounds}
        )
        assert scripted.status_code == 200, scripted.text
        return str(bot_id), key

    return make


def prompts_with(system: System, key: str) -> list[list[dict[str, Any]]]:
    """The prompts the mock received for a script key, oldest first."""
    recorded = httpx.get(f"{system.mock_url}/mock/requests", params={"limit": 500}).json()
    return [
        body["messages"]
        for body in recorded
        if body and any(key in str(m.get("content")) for m in body["messages"])
    ]


LOCATION_CALL = [{"tool_calls": [{"name": "get_location", "arguments": {"precision": "city"}}]}]
ANSWER_WITH_OUTPUT = [{"reply": "You are in {tool_output}."}]


def ask_where(coze: Coze, bot_id: str, **options: Any) -> list[ChatEvent]:
    """A streamed "where am I?" to the bot; cozepy's UNKNOWN (stream.done) events left out."""
    events = coze.chat.stream(
        bot_id=bot_id,
        user_id="u1",
        additional_messages=[Message.build_user_question_text("where am I?")],
        **options,
    )
    return [e for e in events if e.event != ChatEventType.UNKNOWN]


def answer_streamed(coze: Coze, paused: Chat, call_id: str, output: str) -> list[ChatEvent]:
    """The resumed stream after the client answers one call, UNKNOWN events left out."""
    events = coze.chat.submit_tool_outputs(
        conversation_id=paused.conversation_id,
        chat_id=paused.id,
        tool_outputs=[ToolOutput(tool_call_id=call_id, output=output)],
        stream=True,
    )
    return [e for e in events if e.event != ChatEventType.UNKNOWN]


def test_stream_pauses_in_requires_action_and_streamed_outputs_resume_it(
    coze: Coze, make_tool_bot: Callable[..., tuple[str, str]], system: System
) -> None:
    bot_id, key = make_tool_bot(LOCATION_CALL + ANSWER_WITH_OUTPUT)

    events = ask_where(coze, bot_id)

    kinds = [e.event for e in events]
    assert kinds[:2] == [
        ChatEventType.CONVERSATION_CHAT_CREATED,
        ChatEventType.CONVERSATION_CHAT_IN_PROGRESS,
    ]
    assert kinds[-1] == ChatEventType.CONVERSATION_CHAT_REQUIRES_ACTION
    call_message = events[2].message
    assert call_message is not None and call_message.type == "function_call"
    content = orjson.loads(call_message.content)
    assert content["name"] == "get_location" and content["arguments"] == {"precision": "city"}
    assert content["plugin_id"].isdigit() and content["api_id"].isdigit()
    paused = events[-1].chat
    assert paused is not None and paused.status == ChatStatus.REQUIRES_ACTION
    assert paused.required_action is not None
    tool_call = paused.required_action.submit_tool_outputs.tool_calls[0]
    assert tool_call.id == content["tool_call_id"]
    assert tool_call.function.name == "get_location"
    assert orjson.loads(tool_call.function.arguments) == {"precision": "city"}

    retrieved = coze.chat.retrieve(conversation_id=paused.conversation_id, chat_id=paused.id)
    assert retrieved.status == ChatStatus.REQUIRES_ACTION
    assert retrieved.required_action is not None
    assert retrieved.required_action.submit_tool_outputs.tool_calls[0].id == tool_call.id

    resumed = answer_streamed(coze, paused, tool_call.id, "Paris")
    kinds = [e.event for e in resumed]
    assert kinds[0] == ChatEventType.CONVERSATION_CHAT_IN_PROGRESS
    assert kinds[-1] == ChatEventType.CONVERSATION_CHAT_COMPLETED
    answer = [e.message for e in resumed if e.event == ChatEventType.CONVERSATION_MESSAGE_COMPLETED]
    assert answer[-1] is not None and answer[-1].content == "You are in Paris."
    assert resumed[-1].chat is not None and resumed[-1].chat.id == paused.id

    messages = coze.chat.messages.list(conversation_id=paused.conversation_id, chat_id=paused.id)
    assert [m.type for m in messages] == ["question", "function_call", "tool_response", "answer"]
    assert messages[2].content == "Paris"
    # The model saw the call and the client's output in native form.
    last = prompts_with(system, key)[-1]
    assert last[-2]["tool_calls"][0]["function"]["name"] == "get_location"
    assert last[-1] == {"role": "tool", "tool_call_id": tool_call.id, "content": "Paris"}


def test_a_chat_that_saves_no_history_still_has_its_question_after_the_pause(
    coze: Coze, make_tool_bot: Callable[..., tuple[str, str]], system: System
) -> None:
    bot_id, key = make_tool_bot(LOCATION_CALL + ANSWER_WITH_OUTPUT)

    paused = ask_where(coze, bot_id, auto_save_history=False)[-1].chat
    assert paused is not None and paused.status == ChatStatus.REQUIRES_ACTION
    assert paused.required_action is not None
    call = paused.required_action.submit_tool_outputs.tool_calls[0]
    resumed = answer_streamed(coze, paused, call.id, "Paris")
    assert ChatEventType.CONVERSATION_CHAT_COMPLETED in [e.event for e in resumed]

    # The resumed model call has the question (kept by the registry, not saved) before the
    # call and its output.
    last = prompts_with(system, key)[-1]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "tool"]
    assert last[1]["content"] == "where am I?"
    messages = coze.chat.messages.list(conversation_id=paused.conversation_id, chat_id=paused.id)
    assert "question" not in [m.type for m in messages], "auto_save_history false saves none"


def test_text_said_before_a_client_side_call_is_an_answer_of_its_own_before_the_call(
    coze: Coze, make_tool_bot: Callable[..., tuple[str, str]], system: System
) -> None:
    said_first = {"reply": "Let me look.", **LOCATION_CALL[0]}
    bot_id, key = make_tool_bot([said_first, {"reply": " You are in {tool_output}."}])

    events = ask_where(coze, bot_id)
    assert events[-1].event == ChatEventType.CONVERSATION_CHAT_REQUIRES_ACTION
    # Streamed, then completed under the same id, before the call.
    before = [e.message for e in events if e.event == ChatEventType.CONVERSATION_MESSAGE_DELTA]
    assert "".join(m.content for m in before if m is not None) == "Let me look."
    completed_before = [
        e.message for e in events if e.event == ChatEventType.CONVERSATION_MESSAGE_COMPLETED
    ]
    assert [m.type for m in completed_before if m is not None] == ["answer", "function_call"]
    said = completed_before[0]
    assert said is not None and said.content == "Let me look."
    assert {m.id for m in before if m is not None} == {said.id}
    paused = events[-1].chat
    assert paused is not None and paused.required_action is not None
    call = paused.required_action.submit_tool_outputs.tool_calls[0]

    resumed = answer_streamed(coze, paused, call.id, "Paris")
    assert resumed[-1].event == ChatEventType.CONVERSATION_CHAT_COMPLETED
    after = [e.message for e in resumed if e.event == ChatEventType.CONVERSATION_MESSAGE_DELTA]
    assert "".join(m.content for m in after if m is not None) == " You are in Paris."
    completed = [
        e.message for e in resumed if e.event == ChatEventType.CONVERSATION_MESSAGE_COMPLETED
    ]
    assert completed[-1] is not None and completed[-1].type == "answer"
    assert completed[-1].content == " You are in Paris."
    # Stored as streamed: each answer where it was said.
    messages = coze.chat.messages.list(conversation_id=paused.conversation_id, chat_id=paused.id)
    assert [m.type for m in messages] == [
        "question",
        "answer",
        "function_call",
        "tool_response",
        "answer",
    ]
    assert [messages[1].content, messages[-1].content] == ["Let me look.", " You are in Paris."]
    assert {m.id for m in after if m is not None} == {completed[-1].id} == {messages[-1].id}
    assert messages[1].id == said.id
    resumed_prompt = prompts_with(system, key)[-1]
    assert resumed_prompt[-1]["content"] == "Paris"
    # The resumed model call knows what it said before the call, beside the call.
    assert resumed_prompt[-2]["content"] == "Let me look." and resumed_prompt[-2]["tool_calls"]


def test_create_and_poll_with_non_streamed_outputs_and_a_later_chat_sees_the_tool_messages(
    coze: Coze, make_tool_bot: Callable[..., tuple[str, str]], system: System
) -> None:
    bot_id, key = make_tool_bot(LOCATION_CALL + ANSWER_WITH_OUTPUT)

    polled = coze.chat.create_and_poll(
        bot_id=bot_id,
        user_id="u2",
        additional_messages=[Message.build_user_question_text("where?")],
    )
    chat = polled.chat
    assert chat.status == ChatStatus.REQUIRES_ACTION
    assert chat.required_action is not None
    call = chat.required_action.submit_tool_outputs.tool_calls[0]

    done = coze.chat.submit_tool_outputs(
        conversation_id=chat.conversation_id,
        chat_id=chat.id,
        tool_outputs=[ToolOutput(tool_call_id=call.id, output="Lyon")],
        stream=False,
    )
    assert done.id == chat.id
    assert done.status == ChatStatus.COMPLETED
    assert done.usage is not None and done.usage.token_count > 0
    messages = coze.chat.messages.list(conversation_id=chat.conversation_id, chat_id=chat.id)
    assert [m.type for m in messages] == ["question", "function_call", "tool_response", "answer"]
    assert messages[-1].content == "You are in Lyon."

    # A later chat of the conversation: the earlier call and output are in its prompt.
    later = coze.chat.create_and_poll(
        bot_id=bot_id,
        user_id="u2",
        conversation_id=chat.conversation_id,
        additional_messages=[Message.build_user_question_text("and now?")],
    )
    assert later.chat.status == ChatStatus.REQUIRES_ACTION  # the script calls again
    prompt = prompts_with(system, key)[-1]
    tool_messages = [m for m in prompt if m["role"] == "tool"]
    assert {"role": "tool", "tool_call_id": call.id, "content": "Lyon"} in tool_messages
    assert any(m.get("content") == "You are in Lyon." for m in prompt)


def test_bad_submissions_are_refused_and_change_nothing(
    coze: Coze, http: httpx.Client, make_tool_bot: Callable[..., tuple[str, str]]
) -> None:
    bot_id, _ = make_tool_bot(LOCATION_CALL + ANSWER_WITH_OUTPUT)
    chat = coze.chat.create_and_poll(
        bot_id=bot_id, user_id="u3", additional_messages=[Message.build_user_question_text("x")]
    ).chat
    assert chat.required_action is not None
    call_id = chat.required_action.submit_tool_outputs.tool_calls[0].id
    params = {"conversation_id": chat.conversation_id, "chat_id": chat.id}

    def submit(outputs: list[dict[str, str]], **query: str) -> httpx.Response:
        return http.post(
            "/v3/chat/submit_tool_outputs",
            params={**params, **query},
            json={"tool_outputs": outputs, "stream": False},
        )

    unknown = submit(
        [{"tool_call_id": call_id, "output": "a"}, {"tool_call_id": "nope", "output": "b"}]
    )
    assert unknown.status_code == 400 and "unknown tool_call_id: nope" in unknown.json()["msg"]
    missing = submit([{"tool_call_id": "nope", "output": "b"}])
    assert missing.status_code == 400
    empty = submit([])
    assert empty.status_code == 400
    foreign = submit([{"tool_call_id": call_id, "output": "a"}], chat_id="123456789")
    assert foreign.status_code == 404
    still = coze.chat.retrieve(conversation_id=chat.conversation_id, chat_id=chat.id)
    assert still.status == ChatStatus.REQUIRES_ACTION
    listed = coze.chat.messages.list(conversation_id=chat.conversation_id, chat_id=chat.id)
    assert [m.type for m in listed] == ["question", "function_call"]

    ok = submit([{"tool_call_id": call_id, "output": "Nice"}])
    assert ok.status_code == 200 and ok.json()["data"]["status"] == "completed"
    again = submit([{"tool_call_id": call_id, "output": "Nice"}])
    assert again.status_code == 400 and "requires_action" in again.json()["msg"]


def test_a_model_that_calls_tools_forever_fails_at_the_bots_round_limit(
    coze: Coze, http: httpx.Client, make_tool_bot: Callable[..., tuple[str, str]]
) -> None:
    # get_weather is a local function too: each round pauses and is answered at once.
    bot_id, _ = make_tool_bot(
        [{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}],
        max_tool_rounds=2,
    )
    bot = http.get(f"/v1/bots/{bot_id}").json()["data"]
    assert bot["max_tool_rounds"] == 2
    chat = coze.chat.create_and_poll(
        bot_id=bot_id, user_id="u4", additional_messages=[Message.build_user_question_text("go")]
    ).chat
    for _ in range(2):
        assert chat.status == ChatStatus.REQUIRES_ACTION and chat.required_action is not None
        call_id = chat.required_action.submit_tool_outputs.tool_calls[0].id
        chat = coze.chat.submit_tool_outputs(
            conversation_id=chat.conversation_id,
            chat_id=chat.id,
            tool_outputs=[ToolOutput(tool_call_id=call_id, output="sunny")],
            stream=False,
        )
    assert chat.status == ChatStatus.FAILED
    assert chat.last_error is not None and "limit of 2 rounds" in chat.last_error.msg


def test_every_runner_killed_while_paused_a_new_one_resumes_the_chat(
    coze: Coze, make_tool_bot: Callable[..., tuple[str, str]], system: System
) -> None:
    bot_id, _ = make_tool_bot(LOCATION_CALL + ANSWER_WITH_OUTPUT)
    chat = coze.chat.create_and_poll(
        bot_id=bot_id, user_id="u5", additional_messages=[Message.build_user_question_text("x")]
    ).chat
    assert chat.required_action is not None
    call_id = chat.required_action.submit_tool_outputs.tool_calls[0].id

    for runner in system.runners:
        runner.kill()
    system.runners.clear()
    system.start_runner()

    done = coze.chat.submit_tool_outputs(
        conversation_id=chat.conversation_id,
        chat_id=chat.id,
        tool_outputs=[ToolOutput(tool_call_id=call_id, output="Berlin")],
        stream=False,
    )
    assert done.status == ChatStatus.COMPLETED
    messages = coze.chat.messages.list(conversation_id=chat.conversation_id, chat_id=chat.id)
    assert messages[-1].content == "You are in Berlin."


def test_a_paused_chat_without_outputs_fails_after_the_registry_timeout(
    tmp_path: Path, system: System, coze: Coze, make_tool_bot: Callable[..., tuple[str, str]]
) -> None:
    """The registry's run sweeper (every 0.2 s here) fails the chat once its deadline
    has passed. Rather than wait the default 10 minutes, or shorten the timeout for every test
    of this system, the test moves this one chat's deadline into the past in the database."""
    bot_id, _ = make_tool_bot(LOCATION_CALL + ANSWER_WITH_OUTPUT)
    chat = coze.chat.create_and_poll(
        bot_id=bot_id, user_id="u6", additional_messages=[Message.build_user_question_text("x")]
    ).chat
    assert chat.status == ChatStatus.REQUIRES_ACTION
    with sqlite3.connect(system.root / "registry" / "registry.db") as db:
        db.execute("UPDATE chat_runs SET paused_until = 1 WHERE id = ?", (int(chat.id),))
    deadline = time.monotonic() + 20
    while True:
        current = coze.chat.retrieve(conversation_id=chat.conversation_id, chat_id=chat.id)
        if current.status != ChatStatus.REQUIRES_ACTION or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert current.status == ChatStatus.FAILED
    assert current.last_error is not None and "tool outputs" in current.last_error.msg


def test_a_non_streaming_chat_that_pauses_returns_the_paused_chat_without_content(
    http: httpx.Client, make_tool_bot: Callable[..., tuple[str, str]]
) -> None:
    bot_id, _ = make_tool_bot(LOCATION_CALL + ANSWER_WITH_OUTPUT)

    reply = http.post(
        "/v3/chat",
        json={
            "bot_id": bot_id,
            "user_id": "u7",
            "stream": False,
            "additional_messages": [{"role": "user", "content": "where?", "content_type": "text"}],
        },
    )

    assert reply.status_code == 200, reply.text
    data = reply.json()["data"]
    assert data["status"] == "requires_action"
    assert data["content"] == "", "the function_call message is not the answer"
    calls = data["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert [(c["type"], c["function"]["name"]) for c in calls] == [("function", "get_location")]
    assert orjson.loads(calls[0]["function"]["arguments"]) == {"precision": "city"}


@pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="Node.js and npm are not installed",
)
def test_coze_api_js_pauses_resumes_and_submits(
    coze_js: Path,  # noqa: F811 (the fixture imported above)
    system: System,
    token: str,
    make_tool_bot: Callable[..., tuple[str, str]],
) -> None:
    """The official Node SDK, @coze/api, through requires_action and submitToolOutputs."""
    bot_id, _ = make_tool_bot(LOCATION_CALL + ANSWER_WITH_OUTPUT)
    out = tools_check_js(coze_js, system, token, bot_id)

    assert out["events"][:2] == ["conversation.chat.created", "conversation.chat.in_progress"]
    assert out["events"][-3:] == [
        "conversation.chat.requires_action",
        "conversation.stream.done",
        "done",
    ]
    content = json.loads(out["functionCall"]["content"])
    assert content["name"] == "get_location" and content["arguments"] == {"precision": "city"}
    paused = out["paused"]
    assert paused["status"] == "requires_action"
    call = paused["required_action"]["submit_tool_outputs"]["tool_calls"][0]
    assert call["id"] == content["tool_call_id"] and call["type"] == "function"
    assert json.loads(call["function"]["arguments"]) == {"precision": "city"}
    assert out["retrieved"]["status"] == "requires_action"
    assert out["retrieved"]["required_action"] == paused["required_action"]

    resumed = out["resumed"]
    assert resumed[0]["event"] == "conversation.chat.in_progress"
    assert [r["event"] for r in resumed[-3:]] == [
        "conversation.chat.completed",
        "conversation.stream.done",
        "done",
    ]
    answers = [r for r in resumed if r["event"] == "conversation.message.completed"]
    assert answers[-1] == {
        "event": "conversation.message.completed",
        "type": "answer",
        "content": "You are in Paris.",
    }
    assert [m["type"] for m in out["messages"]] == [
        "question",
        "function_call",
        "tool_response",
        "answer",
    ]

    assert out["poll"]["status"] == "requires_action"
    assert out["poll"]["required_action"]["type"] == "submit_tool_outputs"
    assert out["submitted"]["status"] == "completed"
    assert out["submitted"]["id"] != paused["id"]


@pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="Node.js and npm are not installed",
)
def test_coze_api_js_streams_the_answer_said_before_the_pause_and_the_one_after(
    coze_js: Path,  # noqa: F811 (the fixture imported above)
    system: System,
    token: str,
    make_tool_bot: Callable[..., tuple[str, str]],
) -> None:
    said_first = {"reply": "Let me look.", **LOCATION_CALL[0]}
    bot_id, _ = make_tool_bot([said_first, {"reply": " You are in {tool_output}."}])

    out = tools_check_js(coze_js, system, token, bot_id)

    assert "conversation.message.delta" in out["events"]
    assert out["events"][-3] == "conversation.chat.requires_action"
    answers = [r for r in out["resumed"] if r["event"] == "conversation.message.completed"]
    assert answers[-1]["content"] == " You are in Paris."
    assert out["submitted"]["status"] == "completed"


def tools_check_js(sdk_dir: Path, system: System, token: str, bot_id: str) -> dict[str, Any]:
    """check.mjs's `tools` walk through @coze/api: stream to the pause, submit streamed, then
    create-and-poll and submit without streaming; what the SDK returned at each step."""
    return run_sdk_script(sdk_dir, "check.mjs", "tools", system.edge_url, token, bot_id)
