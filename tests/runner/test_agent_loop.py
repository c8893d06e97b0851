"""The agent loop in process: a scripted model, fake tools, an in-memory registry.

End-to-end versions over real processes are in tests/chat/test_tools.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from cozeplus.vocabulary import ChatStatus, PluginType
from services.runner.chat_run import ROUND_LIMIT_CODE
from services.runner.prompt import NO_TOOL_OUTPUT
from tests.runner.fakes import FakeTool, Harness, HeldTool, Round, harness


async def test_a_tool_round_then_the_answer() -> None:
    weather = FakeTool("get_weather", result='{"temp": 21}')
    h = harness(
        [Round(calls=[("get_weather", {"city": "Paris"})]), Round(text="It is 21.")], [weather]
    )

    await h.run(1, "weather in Paris?")

    assert weather.calls == [{"city": "Paris"}]
    names = h.events.names()
    assert names == [
        "conversation.chat.created",
        "conversation.chat.in_progress",
        "conversation.message.completed",
        "conversation.message.completed",
        "conversation.message.delta",
        "conversation.message.completed",
        "conversation.chat.completed",
    ]
    call = h.events.messages("function_call")[0]
    assert orjson.loads(call["content"]) == {
        "name": "get_weather",
        "arguments": {"city": "Paris"},
        "plugin_id": "7401",
        "api_id": "7402",
        "tool_call_id": "call_1",
    }
    assert h.events.messages("tool_response")[0]["content"] == '{"temp": 21}'
    # Stored, in order, with the ids the events carried.
    stored = h.conversations.chat_messages(1)
    assert [m.type for m in stored] == ["question", "function_call", "tool_response", "answer"]
    assert str(stored[1].id) == call["id"]
    # The second model call saw the call and its output in native form.
    second = h.provider.requests[1]
    assert [m.role for m in second.messages][-2:] == ["assistant", "tool"]
    assert second.messages[-2].tool_calls[0].name == "get_weather"
    assert second.messages[-1].tool_call_id == "call_1"
    assert [t.name for t in second.tools] == ["get_weather"]
    run = h.conversations.runs[1]
    assert run.status == ChatStatus.COMPLETED
    # Usage sums both model calls.
    assert (run.usage.prompt_tokens, run.usage.completion_tokens) == (20, 10)
    completed = h.events.items[-1][1]
    assert completed["usage"]["total_tokens"] == 30


async def test_several_calls_of_a_round_run_concurrently() -> None:
    release = asyncio.Event()
    a = FakeTool("a", result="A", delay=release)
    b = FakeTool("b", result="B", delay=release)
    shared = [0, 0]
    a.running = b.running = shared
    h = harness([Round(calls=[("a", {}), ("b", {})]), Round(text="done")], [a, b])

    task = asyncio.create_task(h.run(1, "go"))
    await asyncio.gather(a.entered.wait(), b.entered.wait())
    release.set()
    await task

    assert shared[1] == 2, "both calls were running at once"
    assert [m["content"] for m in h.events.messages("tool_response")] == ["A", "B"]
    assert h.conversations.runs[1].status == ChatStatus.COMPLETED


async def test_tool_errors_timeouts_and_unknown_tools_go_back_to_the_model() -> None:
    broken = FakeTool("broken", raises=True)
    stuck = FakeTool("stuck", hangs=True)
    h = harness(
        [
            Round(calls=[("broken", {}), ("stuck", {}), ("missing", {}), ("broken", "[1]")]),
            Round(text="sorry"),
        ],
        [broken, stuck],
        tool_timeout_s=0.05,
    )

    await h.run(1, "try")

    outputs = [m["content"] for m in h.events.messages("tool_response")]
    assert outputs[0] == "error: broken failed (RuntimeError)"
    assert outputs[1] == "error: stuck did not answer within 0.05s"
    assert outputs[2] == "error: the bot has no tool named 'missing'"
    assert outputs[3] == "error: the arguments must be a JSON object"
    assert h.conversations.runs[1].status == ChatStatus.COMPLETED
    assert h.provider.requests[1].messages[-4].text_content.startswith("error: broken")


async def test_a_model_that_calls_tools_forever_fails_at_the_round_limit() -> None:
    loop = FakeTool("again")
    h = harness([Round(calls=[("again", {})])], [loop], max_tool_rounds=3)

    await h.run(1, "loop")

    run = h.conversations.runs[1]
    assert run.status == ChatStatus.FAILED
    assert run.last_error.code == ROUND_LIMIT_CODE
    assert "limit of 3 rounds" in run.last_error.msg
    assert len(loop.calls) == 3
    assert len(h.provider.requests) == 4
    assert run.usage.prompt_tokens == 40, "every model call counted, the refused one too"
    assert h.events.names()[-1] == "conversation.chat.failed"


async def test_the_default_round_limit_is_eight() -> None:
    loop = FakeTool("again")
    h = harness([Round(calls=[("again", {})])], [loop])

    await h.run(1, "loop")

    assert len(loop.calls) == 8
    assert h.conversations.runs[1].status == ChatStatus.FAILED


async def test_a_model_failure_after_a_tool_round_fails_the_chat_with_summed_usage() -> None:
    h = harness([Round(calls=[("t", {})]), Round(fail=True)], [FakeTool("t")])

    await h.run(1, "x")

    run = h.conversations.runs[1]
    assert run.status == ChatStatus.FAILED
    assert "HTTP 500" in run.last_error.msg
    assert run.usage.prompt_tokens > 10, "the first call's usage plus the failed call's estimate"


async def test_a_local_function_pauses_and_a_resumed_run_continues_from_the_registry() -> None:
    where = FakeTool("get_location", plugin_type=PluginType.LOCAL)
    weather = FakeTool("get_weather", result="sunny")
    h = harness(
        [
            Round(calls=[("get_weather", {"city": "x"}), ("get_location", {"precision": "city"})]),
            Round(text="In Paris it is sunny."),
        ],
        [where, weather],
    )

    await h.run(1, "weather here?", custom_variables={"city": "Lyon"})

    run = h.conversations.runs[1]
    assert run.status == ChatStatus.REQUIRES_ACTION
    assert [(c.id, c.name, c.arguments) for c in run.pending_tool_calls] == [
        ("call_2", "get_location", '{"precision":"city"}')
    ]
    assert where.calls == [], "a client-side function is never called by the runner"
    assert h.events.names()[-1] == "conversation.chat.requires_action"
    paused = h.events.items[-1][1]
    assert paused["required_action"] == {
        "type": "submit_tool_outputs",
        "submit_tool_outputs": {
            "tool_calls": [
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_location", "arguments": '{"precision":"city"}'},
                }
            ]
        },
    }
    assert paused["usage"]["prompt_tokens"] == 10

    # The client answers; a fresh run (any runner) resumes from the stored state alone.
    h.conversations.submit(1, {"call_2": "Paris"})
    h.events.items.clear()
    await h.run(1, resume=True)

    assert h.events.names()[0] == "conversation.chat.in_progress", "no second created"
    assert h.events.names()[-1] == "conversation.chat.completed"
    resumed = h.provider.requests[-1]
    assert resumed.messages[0].text_content == "You help. Lyon", "custom variables kept"
    tools_seen = {m.tool_call_id: m.text_content for m in resumed.messages if m.role == "tool"}
    assert tools_seen == {"call_1": "sunny", "call_2": "Paris"}
    run = h.conversations.runs[1]
    assert run.status == ChatStatus.COMPLETED
    assert run.usage.prompt_tokens == 20, "usage sums the calls before and after the pause"
    assert [m.type for m in h.conversations.chat_messages(1)] == [
        "question",
        "function_call",
        "function_call",
        "tool_response",
        "tool_response",
        "answer",
    ]


async def answer_and_resume(h: Harness, chat_id: int) -> None:
    """The client answers every pending call of the paused chat; a new run resumes it."""
    run = h.conversations.runs[chat_id]
    assert run.status == ChatStatus.REQUIRES_ACTION
    h.conversations.submit(chat_id, {c.id: "here" for c in run.pending_tool_calls})
    await h.run(chat_id, resume=True)


async def test_custom_variables_survive_a_second_pause() -> None:
    # A resumed run's request carries no custom_variables: they come from the registry, and
    # the next pause must store them again, or the third round renders the prompt without.
    where = FakeTool("get_location", plugin_type=PluginType.LOCAL)
    h = harness(
        [
            Round(calls=[("get_location", {"n": 1})]),
            Round(calls=[("get_location", {"n": 2})]),
            Round(text="Still Lyon."),
        ],
        [where],
    )

    await h.run(1, "where?", custom_variables={"city": "Lyon"})
    for _ in range(2):
        await answer_and_resume(h, 1)

    assert h.conversations.runs[1].status == ChatStatus.COMPLETED
    assert len(h.provider.requests) == 3
    for request in h.provider.requests:
        assert request.messages[0].text_content == "You help. Lyon"


async def test_a_chat_that_saves_no_input_still_has_its_question_when_resumed() -> None:
    # auto_save_history false: the question is in no stored message, so the paused run keeps
    # it in the registry and the resumed run's prompt has it before the tool messages.
    where = FakeTool("get_location", plugin_type=PluginType.LOCAL)
    h = harness(
        [
            Round(calls=[("get_location", {"n": 1})]),
            Round(calls=[("get_location", {"n": 2})]),
            Round(text="Paris."),
        ],
        [where],
    )

    await h.run(1, "where am I?", auto_save_history=False)
    assert h.conversations.chat_messages(1)[0].type == "function_call", "no stored question"
    for _ in range(2):
        await answer_and_resume(h, 1)

    assert h.conversations.runs[1].status == ChatStatus.COMPLETED
    for request in h.provider.requests:
        prompt = [(m.role, m.text_content) for m in request.messages]
        assert prompt[1] == ("user", "where am I?"), prompt
    resumed = [m.role for m in h.provider.requests[-1].messages]
    assert resumed[:3] == ["system", "user", "assistant"], "question, then the tool messages"


async def test_a_chat_that_saves_its_input_keeps_none_with_the_pause() -> None:
    where = FakeTool("get_location", plugin_type=PluginType.LOCAL)
    h = harness([Round(calls=[("get_location", {})]), Round(text="ok")], [where])
    await h.run(1, "where am I?")
    assert h.conversations.unsaved_inputs[1] == "", "its question is a stored message"
    await answer_and_resume(h, 1)
    questions = [m for m in h.provider.requests[-1].messages if m.role == "user"]
    assert [m.text_content for m in questions] == ["where am I?"], "not twice"


async def test_text_said_before_a_pause_is_an_answer_message_of_its_own() -> None:
    # Completed and stored before the calls, under the id its deltas had: the resumed run's
    # answer is a newer message, and no answer's deltas differ from its completed content.
    where = FakeTool("get_location", plugin_type=PluginType.LOCAL)
    h = harness(
        [Round(text="Let me look. ", calls=[("get_location", {})]), Round(text="Paris.")],
        [where],
    )

    await h.run(1, "where am I?")
    assert h.conversations.paused_answers[1] == "", "stored as a message, not kept aside"
    assert [(m.type, m.content) for m in h.conversations.chat_messages(1)][1:] == [
        ("answer", "Let me look. "),
        ("function_call", h.conversations.chat_messages(1)[2].content),
    ]
    first = answers_by_id(h.events.items)
    assert list(first.values()) == [("Let me look. ", "Let me look. ")]
    h.events.items.clear()
    await answer_and_resume(h, 1)

    answers = [m.content for m in h.conversations.chat_messages(1) if m.type == "answer"]
    assert answers == ["Let me look. ", "Paris."]
    assert list(answers_by_id(h.events.items).values()) == [("Paris.", "Paris.")]


def answers_by_id(items: list[tuple[str, dict[str, Any]]]) -> dict[str, tuple[str, str]]:
    """Each answer message's deltas joined, and its completed content, by message id."""
    deltas: dict[str, list[str]] = {}
    completed: dict[str, str] = {}
    for name, data in items:
        if data.get("type") != "answer":
            continue
        if name.endswith(".delta"):
            deltas.setdefault(data["id"], []).append(data["content"])
        elif name.endswith("message.completed"):
            completed[data["id"]] = data["content"]
    assert deltas.keys() == completed.keys(), "every answer streamed is completed, once"
    return {i: ("".join(deltas[i]), completed[i]) for i in completed}


async def test_text_said_before_server_side_calls_is_completed_before_them() -> None:
    h = harness(
        [Round(text="Let me check.", calls=[("t", {})]), Round(text=" It is 21.")],
        [FakeTool("t", result="21")],
    )

    await h.run(1, "weather?")

    assert h.events.names()[2:] == [
        "conversation.message.delta",
        "conversation.message.completed",  # the answer so far
        "conversation.message.completed",  # function_call
        "conversation.message.completed",  # tool_response
        "conversation.message.delta",
        "conversation.message.completed",  # the answer
        "conversation.chat.completed",
    ]
    by_id = answers_by_id(h.events.items)
    assert list(by_id.values()) == [
        ("Let me check.", "Let me check."),
        (" It is 21.", " It is 21."),
    ]
    stored = h.conversations.chat_messages(1)
    assert [m.type for m in stored] == [
        "question",
        "answer",
        "function_call",
        "tool_response",
        "answer",
    ]
    assert [str(m.id) for m in stored if m.type == "answer"] == list(by_id)

    # A later chat's prompt has the text beside the calls, as the model returned it.
    h.provider.rounds = [Round(text="ok")]
    await h.run(2, "and tomorrow?")
    history = h.provider.requests[-1].messages
    roles = [m.role for m in history]
    assert roles[1:] == ["user", "assistant", "tool", "assistant", "user"]
    assert history[2].tool_calls and history[2].text_content == "Let me check."
    assert history[4].text_content == " It is 21."


async def test_a_later_chat_sees_earlier_tool_messages_and_unanswered_calls_get_a_note() -> None:
    h = harness([Round(calls=[("t", {"n": 1})]), Round(text="one")], [FakeTool("t", result="T")])
    await h.run(1, "first")
    # A chat that ended while a call was unanswered (e.g. canceled): its call is history too.
    h.conversations._add(2, "user", "question", "second")
    h.conversations._add(
        2, "assistant", "function_call", '{"name":"t","arguments":{},"tool_call_id":"c9"}'
    )

    h.provider.rounds = [Round(text="ok")]
    await h.run(3, "third")

    prompt = h.provider.requests[-1].messages
    roles = [m.role for m in prompt]
    assert roles == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
        "tool",
        "user",
    ]
    assert prompt[3].text_content == "T"
    assert prompt[7].tool_call_id == "c9" and prompt[7].text_content == NO_TOOL_OUTPUT


async def test_cancel_during_a_tool_call_ends_the_chat_canceled() -> None:
    stuck = FakeTool("stuck", hangs=True)
    h = harness([Round(calls=[("stuck", {})])], [stuck])
    h.conversations.create(1, "x")
    from cozeplus.chat_protocol import ChatRequest, InputMessage
    from services.runner.chat_run import ChatRun

    async def keepalive() -> None:
        return None

    run = ChatRun(
        h.deps,
        ChatRequest(
            chat_id=1,
            conversation_id=700,
            section_id=700,
            owner_id=7,
            user_id="u",
            bot_id=70,
            bot_version=1,
            messages=[InputMessage(role="user", content="x")],
            created_at=0,
        ),
        keepalive,
    )
    task = asyncio.create_task(run.execute())
    await stuck.entered.wait()
    run.cancel()
    await task

    assert h.conversations.runs[1].status == ChatStatus.CANCELED
    assert h.events.names()[-1] == "conversation.chat.canceled"


@pytest.mark.parametrize(
    ("rounds", "status"),
    [
        ([Round(calls=[("held", {})]), Round(calls=[("held", {})]), Round(text="ok")], "completed"),
        ([Round(calls=[("held", {})])], "failed"),  # past the round limit
        ([Round(calls=[("held", {})]), Round(calls=[("device", {})])], "requires_action"),
    ],
)
async def test_what_tools_hold_is_released_once_when_the_run_ends(
    rounds: list[Round], status: str
) -> None:
    held = HeldTool("held")
    device = FakeTool("device", plugin_type=PluginType.LOCAL)
    h = harness(rounds, [held, device], max_tool_rounds=2)

    await h.run(1, "go")

    assert h.conversations.runs[1].status == status
    assert held.calls and held.closed == 1


async def test_a_tool_that_fails_to_release_does_not_change_the_outcome() -> None:
    held = HeldTool("held", close_fails=True)
    h = harness([Round(calls=[("held", {})]), Round(text="fine")], [held])

    await h.run(1, "go")

    assert held.closed == 1
    assert h.conversations.runs[1].status == ChatStatus.COMPLETED


async def test_what_the_model_said_before_its_calls_goes_back_with_them() -> None:
    h = harness(
        [Round(text="Let me check.", calls=[("t", {})]), Round(calls=[("t", {})]), Round("ok")],
        [FakeTool("t")],
    )

    await h.run(1, "go")

    second, third = h.provider.requests[1], h.provider.requests[2]
    said = second.messages[-2]
    assert said.role == "assistant" and said.tool_calls
    assert said.text_content == "Let me check."
    silent = third.messages[-2]
    assert silent.tool_calls and silent.parts == ()  # a round that said nothing adds no text
    assert h.conversations.runs[1].status == ChatStatus.COMPLETED


async def test_a_resumed_run_knows_what_the_model_said_before_the_paused_round() -> None:
    where = FakeTool("get_location", plugin_type=PluginType.LOCAL)
    h = harness(
        [Round(text="Let me look.", calls=[("get_location", {})]), Round(text=" In Lyon.")],
        [where],
    )

    await h.run(1, "where?")
    await answer_and_resume(h, 1)

    resumed = h.provider.requests[-1].messages
    assert [m.role for m in resumed[-3:]] == ["user", "assistant", "tool"]
    assert resumed[-2].tool_calls and resumed[-2].text_content == "Let me look."
    assert h.conversations.chat_messages(1)[-1].content == " In Lyon."


async def test_a_run_paused_with_its_answer_kept_aside_still_resumes_with_it() -> None:
    # Runs paused by runners before answers were stored as messages: the registry kept the
    # text with the pause, and the resumed run's answer continues it.
    where = FakeTool("get_location", plugin_type=PluginType.LOCAL)
    h = harness([Round(calls=[("get_location", {})]), Round(text=" In Lyon.")], [where])
    await h.run(1, "where?")
    h.conversations.paused_answers[1] = "Let me look."

    await answer_and_resume(h, 1)

    resumed = h.provider.requests[-1].messages
    assert resumed[-2].tool_calls and resumed[-2].text_content == "Let me look."
    assert h.conversations.chat_messages(1)[-1].content == "Let me look. In Lyon."
