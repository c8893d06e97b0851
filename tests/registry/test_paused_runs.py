"""The agent loop's registry side over gRPC, on each database backend: messages a running chat
appends, pausing in requires_action, submitted tool outputs, and the pause's expiry."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import grpc
import pytest
import sqlalchemy as sa

from cozeplus.chat_protocol import InputMessage, encode_input_messages
from cozeplus.ids import MAX_NODE, IdGenerator
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from services.registry.database import create_database_engine
from tests.registry.conftest import RegistryUnderTest
from tests.registry.rpc_expect import expect_status
from tests.registry.test_conversations import Fixture, user

if TYPE_CHECKING:
    from cozeplus.rpc.v1.conversations_pb2_grpc import ConversationsAsyncStub
    from cozeplus.rpc.v1.registry_pb2_grpc import BotRegistryAsyncStub

INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
NOT_FOUND = grpc.StatusCode.NOT_FOUND
# Time-ordered ids, as a runner mints them (a node the registry does not lease).
_ids = IdGenerator(MAX_NODE)


@pytest.fixture
async def f(
    conversations_rpc: ConversationsAsyncStub, bots_rpc: BotRegistryAsyncStub, owner_id: int
) -> Fixture:
    fixture = Fixture(conversations_rpc, bots_rpc, owner_id)
    fixture.bot_id = await fixture.new_bot()
    return fixture


def call_message(call_id: str, name: str = "get_location") -> cpb.RunMessage:
    content = json.dumps({"name": name, "arguments": {}, "tool_call_id": call_id})
    return cpb.RunMessage(
        id=_ids.next_id(), role="assistant", type="function_call", content=content
    )


def output_message(call_id: str, output: str) -> cpb.RunMessage:
    return cpb.RunMessage(
        id=_ids.next_id(),
        role="assistant",
        type="tool_response",
        content=output,
        tool_call_id=call_id,
    )


async def append(
    f: Fixture, chat_id: int, *messages: cpb.RunMessage
) -> cpb.AppendRunMessagesResponse:
    return await f.rpc.AppendRunMessages(
        cpb.AppendRunMessagesRequest(owner_id=f.owner_id, chat_id=chat_id, messages=messages)
    )


async def pause(
    f: Fixture, chat_id: int, *call_ids: str, unsaved_input_json: str = "", answer_so_far: str = ""
) -> cpb.ChatRun:
    return await f.rpc.PauseRun(
        cpb.PauseRunRequest(
            owner_id=f.owner_id,
            chat_id=chat_id,
            tool_calls=[
                cpb.PendingToolCall(id=i, name="get_location", arguments="{}") for i in call_ids
            ],
            usage=cpb.Usage(prompt_tokens=11, completion_tokens=3),
            custom_variables_json='{"city": "Lyon"}',
            unsaved_input_json=unsaved_input_json,
            answer_so_far=answer_so_far,
        )
    )


def stored_column(registry: RegistryUnderTest, chat_id: int, column: str) -> str:
    """What the database holds of a run's kept state (no RPC shows an ended run's)."""
    engine = create_database_engine(registry.database_url)
    try:
        with engine.connect() as connection:
            value = connection.execute(
                sa.text(f"SELECT {column} FROM chat_runs WHERE id = :id"), {"id": chat_id}
            ).scalar_one()
            return str(value)
    finally:
        engine.dispose()


KEPT = encode_input_messages([InputMessage(role="user", content="where?")])


async def submit(f: Fixture, run: cpb.ChatRun, **outputs: str) -> cpb.ChatRun:
    return await f.rpc.SubmitToolOutputs(
        cpb.SubmitToolOutputsRequest(
            owner_id=f.owner_id,
            conversation_id=run.conversation_id,
            chat_id=run.id,
            tool_outputs=[cpb.ToolOutput(tool_call_id=k, output=v) for k, v in outputs.items()],
        )
    )


async def test_a_running_chat_appends_tool_messages_that_are_history_later(f: Fixture) -> None:
    chat = await f.chat(0, user("q1"))
    await f.start(chat.id)
    stored = await append(f, chat.id, call_message("c1"), output_message("c1", "Paris"))
    await f.finish(chat.id, answer="a1")

    assert [m.type for m in stored.messages] == ["function_call", "tool_response"]
    assert json.loads(stored.messages[1].meta_data_json) == {"tool_call_id": "c1"}
    assert [m.type for m in await f.chat_messages(chat.id)] == [
        "question",
        "function_call",
        "tool_response",
        "answer",
    ]
    later = await f.chat(chat.conversation_id, user("q2"))
    started = await f.start(later.id, history_rounds=5)
    assert [m.type for m in started.history] == [
        "question",
        "function_call",
        "tool_response",
        "answer",
    ]


async def test_the_answer_said_before_a_round_of_calls_is_stored_before_them(f: Fixture) -> None:
    chat = await f.chat(0, user("q1"))
    await f.start(chat.id)
    said = cpb.RunMessage(
        id=_ids.next_id(), role="assistant", type="answer", content="Let me look."
    )
    stored = await append(f, chat.id, said, call_message("c1"), output_message("c1", "Paris"))
    await f.finish(chat.id, answer="Paris.")

    first = stored.messages[0]
    assert (first.id, first.type, first.content_type) == (said.id, "answer", "text")
    assert (await f.chat_messages(chat.id))[1].content == "Let me look."
    assert [m.type for m in await f.chat_messages(chat.id)] == [
        "question",
        "answer",
        "function_call",
        "tool_response",
        "answer",
    ]


async def test_append_refuses_bad_messages_and_chats_not_running(f: Fixture) -> None:
    chat = await f.chat(0)
    await expect_status(append(f, chat.id, call_message("c1")), PRECONDITION, "not in_progress")
    await f.start(chat.id)
    bad = cpb.RunMessage(id=_ids.next_id(), role="assistant", type="question", content="x")
    await expect_status(append(f, chat.id, bad), INVALID, "type must be one of")
    await expect_status(append(f, chat.id), INVALID, "messages")
    assert [m.type for m in await f.chat_messages(chat.id)] == ["question"]


async def test_pause_then_submit_resumes_the_chat_from_the_registry(f: Fixture) -> None:
    chat = await f.chat(0, user("where?"))
    await f.start(chat.id)
    await append(f, chat.id, call_message("c1"), call_message("c2"), output_message("c1", "server"))
    paused = await pause(f, chat.id, "c2")

    assert paused.status == "requires_action"
    assert [(c.id, c.name) for c in paused.pending_tool_calls] == [("c2", "get_location")]
    assert paused.paused_until > paused.created_at
    assert (paused.usage.prompt_tokens, paused.usage.completion_tokens) == (11, 3)
    assert (await f.get_chat(chat.id)).status == "requires_action"

    resumed = await submit(f, paused, c2="Paris")
    assert resumed.status == "created"
    assert list(resumed.pending_tool_calls) == []
    started = await f.start(chat.id, history_rounds=5)
    assert not started.restarted
    assert json.loads(started.run.custom_variables_json) == {"city": "Lyon"}
    assert started.run.usage.prompt_tokens == 11
    kinds = [(m.type, m.content) for m in started.chat_messages]
    assert kinds[0] == ("question", "where?")
    assert kinds[-1] == ("tool_response", "Paris")
    assert json.loads(started.chat_messages[-1].meta_data_json) == {"tool_call_id": "c2"}


async def test_bad_submissions_change_nothing(f: Fixture, other_owner_id: int) -> None:
    chat = await f.chat(0)
    await expect_status(submit(f, chat, c1="x"), PRECONDITION, "requires_action")
    await f.start(chat.id)
    await append(f, chat.id, call_message("c1"), call_message("c2"))
    paused = await pause(f, chat.id, "c1", "c2")

    await expect_status(submit(f, paused, c1="x"), INVALID, "missing output for tool_call_id: c2")
    await expect_status(
        submit(f, paused, c1="x", c2="y", c3="z"), INVALID, "unknown tool_call_id: c3"
    )
    await expect_status(submit(f, paused), INVALID, "tool_outputs is required")
    foreign = Fixture(f.rpc, f.bots, other_owner_id)
    await expect_status(submit(foreign, paused, c1="x", c2="y"), NOT_FOUND)
    other_conversation = cpb.ChatRun(
        id=paused.id, conversation_id=(await f.chat(0)).conversation_id
    )
    await expect_status(submit(f, other_conversation, c1="x", c2="y"), NOT_FOUND)

    still = await f.get_chat(chat.id)
    assert still.status == "requires_action"
    assert [c.id for c in still.pending_tool_calls] == ["c1", "c2"]
    assert [m.type for m in await f.chat_messages(chat.id)] == [
        "question",
        "function_call",
        "function_call",
    ]


async def test_pause_needs_a_running_chat_and_distinct_call_ids(f: Fixture) -> None:
    chat = await f.chat(0)
    await expect_status(pause(f, chat.id, "c1"), PRECONDITION, "not in_progress")
    await f.start(chat.id)
    await expect_status(pause(f, chat.id, "c1", "c1"), INVALID, "distinct")
    await expect_status(pause(f, chat.id), INVALID, "tool_calls")


async def test_a_paused_chat_can_be_canceled(f: Fixture) -> None:
    chat = await f.chat(0)
    await f.start(chat.id)
    await append(f, chat.id, call_message("c1"))
    await pause(f, chat.id, "c1")
    canceled = await f.rpc.CancelChat(
        cpb.CancelChatRequest(owner_id=f.owner_id, conversation_id=chat.conversation_id)
    )
    assert canceled.run.status == "canceled" and not canceled.running


async def test_a_chat_that_saves_no_input_keeps_it_while_paused(
    f: Fixture, registry_under_test: RegistryUnderTest
) -> None:
    chat = await f.chat(0, user("where?"), auto_save_history=False)
    await f.start(chat.id)
    await append(f, chat.id, call_message("c1"))
    paused = await pause(f, chat.id, "c1", unsaved_input_json=KEPT)
    assert stored_column(registry_under_test, chat.id, "unsaved_input") == KEPT

    await submit(f, paused, c1="Paris")
    started = await f.start(chat.id)
    assert started.unsaved_input_json == KEPT, "the resumed run gets its question back"
    assert [m.type for m in started.chat_messages] == ["function_call", "tool_response"]
    await f.finish(chat.id, answer="Paris")
    assert stored_column(registry_under_test, chat.id, "unsaved_input") == "", (
        "emptied when it ends"
    )


async def test_kept_input_is_emptied_by_a_cancel_and_ignored_for_a_saving_chat(
    f: Fixture, registry_under_test: RegistryUnderTest
) -> None:
    unsaved = await f.chat(0, user("where?"), auto_save_history=False)
    await f.start(unsaved.id)
    await append(f, unsaved.id, call_message("c1"))
    await pause(f, unsaved.id, "c1", unsaved_input_json=KEPT)
    await f.rpc.CancelChat(
        cpb.CancelChatRequest(owner_id=f.owner_id, conversation_id=unsaved.conversation_id)
    )
    assert stored_column(registry_under_test, unsaved.id, "unsaved_input") == ""

    saving = await f.chat(0, user("where?"))
    await f.start(saving.id)
    await append(f, saving.id, call_message("c1"))
    paused = await pause(f, saving.id, "c1", unsaved_input_json=KEPT)
    await submit(f, paused, c1="Paris")
    started = await f.start(saving.id)
    assert started.unsaved_input_json == "", "its input is a stored message already"


@pytest.mark.parametrize("kept", ["{", '{"role": "user"}', "[1, 2]", "[" + "{}," * 100 + "{}]"])
async def test_unreadable_kept_input_is_refused_and_changes_nothing(f: Fixture, kept: str) -> None:
    chat = await f.chat(0, user("where?"), auto_save_history=False)
    await f.start(chat.id)
    await expect_status(
        pause(f, chat.id, "c1", unsaved_input_json=kept), INVALID, "unsaved_input_json"
    )
    assert (await f.get_chat(chat.id)).status == "in_progress"


async def test_the_answer_so_far_is_kept_while_paused_and_given_back(
    f: Fixture, registry_under_test: RegistryUnderTest
) -> None:
    chat = await f.chat(0, user("where?"))
    await f.start(chat.id)
    await append(f, chat.id, call_message("c1"))
    long = "x" * 1_000_001
    await expect_status(pause(f, chat.id, "c1", answer_so_far=long), INVALID, "answer_so_far")
    paused = await pause(f, chat.id, "c1", answer_so_far="Let me look. ")
    await submit(f, paused, c1="Paris")
    started = await f.start(chat.id)
    assert started.answer_so_far == "Let me look. "
    await f.finish(chat.id, answer="Let me look. Paris.")
    assert stored_column(registry_under_test, chat.id, "paused_answer") == ""
