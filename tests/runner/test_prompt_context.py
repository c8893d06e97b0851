"""The gather-context step in process: knowledge chunks and images by file id reach the
prompt, and a failing search or file read does not fail the chat.

End-to-end versions over real processes are in tests/knowledge/test_chat_knowledge.py.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
import orjson
import pytest

from cozeplus.chat_protocol import InputMessage
from cozeplus.model_catalog import ModelCatalog, ModelSpec
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.vocabulary import ChatStatus, PluginType
from services.runner.knowledge_retrieval import KNOWLEDGE_HEADING, KnowledgeChunk
from services.runner.prompt_context import image_file_ids, latest_question
from services.runner.providers.base import ImagePart, TextPart
from services.runner.tools.base import Tool
from services.runner.tools.combined import CombinedToolSource
from tests.runner.fakes import CONVERSATION, FakeRpcError, FakeTool, Harness, Round, harness

DATA_URL = "data:image/png;base64,iVBORw0KGgo="


@dataclass
class FakeContext:
    chunks: Sequence[KnowledgeChunk] = ()
    urls: Mapping[str, str] = field(default_factory=dict)
    fail_search: bool = False
    fail_images: bool = False
    queries: list[str] = field(default_factory=list)
    file_ids: list[list[str]] = field(default_factory=list)

    async def knowledge(
        self, *, owner_id: int, config: pb.BotConfig, query: str
    ) -> Sequence[KnowledgeChunk]:
        self.queries.append(query)
        if self.fail_search:
            raise FakeRpcError(grpc.StatusCode.UNAVAILABLE, "registry down")
        return self.chunks

    async def images(self, *, owner_id: int, file_ids: Sequence[str]) -> Mapping[str, str]:
        self.file_ids.append(list(file_ids))
        if self.fail_images:
            raise OSError("object store unreachable")
        return {i: self.urls[i] for i in file_ids if i in self.urls}


def with_context(h: Harness, context: FakeContext, *, vision: bool = False) -> Harness:
    h.deps.context = context
    h.deps.catalog = ModelCatalog([ModelSpec(id="fake", provider="echo", vision=vision)])
    return h


def image_message(text: str, file_id: str) -> str:
    return orjson.dumps(
        [{"type": "text", "text": text}, {"type": "image", "file_id": file_id}]
    ).decode()


async def test_chunks_go_into_the_system_prompt_under_their_document_names() -> None:
    context = FakeContext(chunks=[KnowledgeChunk("otters.txt", "Sea otters hold hands.", 0.9)])
    h = with_context(harness([Round(text="They hold hands.")], [], prompt="Be brief."), context)

    await h.run(1, "what do otters do?")

    assert context.queries == ["what do otters do?"]
    system = h.provider.requests[0].messages[0]
    assert system.role == "system"
    assert system.text_content.startswith(f"Be brief.\n\n{KNOWLEDGE_HEADING}\n")
    assert "[1] Document: otters.txt\nSea otters hold hands." in system.text_content
    # One system message: the chunks join the bot's prompt, the question stays last.
    assert [m.role for m in h.provider.requests[0].messages] == ["system", "user"]
    assert h.conversations.runs[1].status == ChatStatus.COMPLETED


async def test_without_chunks_the_prompt_is_the_bots_alone() -> None:
    context = FakeContext()
    h = with_context(harness([Round(text="hi")], [], prompt="Be brief."), context)

    await h.run(1, "hello")

    assert h.provider.requests[0].messages[0].text_content == "Be brief."


async def test_a_failed_search_is_logged_and_the_chat_answers_without_chunks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    context = FakeContext(
        chunks=[KnowledgeChunk("otters.txt", "Sea otters hold hands.", 0.9)], fail_search=True
    )
    h = with_context(harness([Round(text="I do not know.")], [], prompt="Be brief."), context)

    with caplog.at_level(logging.WARNING, logger="cozeplus.runner.chat"):
        await h.run(1, "what do otters do?")

    assert h.conversations.runs[1].status == ChatStatus.COMPLETED
    assert h.provider.requests[0].messages[0].text_content == "Be brief."
    assert "knowledge retrieval failed" in caplog.text and "registry down" in caplog.text


async def test_a_resumed_chat_retrieves_for_the_same_question() -> None:
    context = FakeContext(chunks=[KnowledgeChunk("otters.txt", "Sea otters hold hands.", 0.9)])
    ask = FakeTool("ask_user", plugin_type=PluginType.LOCAL)
    h = with_context(
        harness([Round(calls=[("ask_user", {})]), Round(text="done")], [ask], prompt="P"),
        context,
    )

    await h.run(1, "otters?")
    assert h.conversations.runs[1].status == ChatStatus.REQUIRES_ACTION
    h.conversations.submit(1, {"call_1": "yes"})
    await h.run(1, resume=True)

    assert h.conversations.runs[1].status == ChatStatus.COMPLETED
    assert context.queries == ["otters?", "otters?"]
    resumed = h.provider.requests[-1].messages
    assert "Document: otters.txt" in resumed[0].text_content


async def test_a_vision_model_sees_images_by_file_id_in_new_messages_and_history() -> None:
    context = FakeContext(urls={"111": DATA_URL, "222": DATA_URL + "AA"})
    h = with_context(harness([Round(text="a dot")], []), context, vision=True)
    # An earlier chat of the conversation sent image 111.
    h.conversations.create(1, image_message("first", "111"), "object_string")
    h.conversations.runs[1].status = ChatStatus.COMPLETED

    await h.run(2, image_message("and this?", "222"), content_type="object_string")

    assert context.file_ids == [["111", "222"]]
    messages = h.provider.requests[0].messages
    history, new = messages[-2], messages[-1]
    assert list(history.parts) == [TextPart("first"), ImagePart(DATA_URL)]
    assert list(new.parts) == [TextPart("and this?"), ImagePart(DATA_URL + "AA")]


async def test_a_model_without_vision_gets_notes_and_no_file_is_read() -> None:
    context = FakeContext(urls={"222": DATA_URL})
    h = with_context(harness([Round(text="?")], []), context, vision=False)

    await h.run(1, image_message("see", "222"), content_type="object_string")

    assert context.file_ids == []
    parts = list(h.provider.requests[0].messages[-1].parts)
    assert parts == [TextPart("see"), TextPart("[image: 222]")]


async def test_a_failed_image_read_leaves_the_note_and_the_chat_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    context = FakeContext(urls={"222": DATA_URL}, fail_images=True)
    h = with_context(harness([Round(text="?")], []), context, vision=True)

    with caplog.at_level(logging.WARNING, logger="cozeplus.runner.chat"):
        await h.run(1, image_message("see", "222"), content_type="object_string")

    assert h.conversations.runs[1].status == ChatStatus.COMPLETED
    assert list(h.provider.requests[0].messages[-1].parts)[1] == TextPart("[image: 222]")
    assert "reading images failed" in caplog.text


def stored(chat_id: int, role: str, content: str, content_type: str = "text") -> cpb.Message:
    return cpb.Message(
        conversation_id=CONVERSATION,
        chat_id=chat_id,
        role=role,
        type="question" if role == "user" else "answer",
        content=content,
        content_type=content_type,
    )


def test_the_question_is_the_latest_user_text_skipping_image_only_messages() -> None:
    history = [stored(1, "user", "older question"), stored(1, "assistant", "answer")]
    image_only = orjson.dumps([{"type": "image", "file_id": "9"}]).decode()
    new = [
        InputMessage(role="user", content="the question"),
        InputMessage(role="user", content=image_only, content_type="object_string"),
    ]
    assert latest_question(history, new) == "the question"
    assert latest_question(history, []) == "older question"
    assert latest_question([], [InputMessage(role="assistant", content="x")]) == ""


def test_image_ids_come_from_user_messages_newest_first_up_to_the_limit() -> None:
    history = [
        stored(1, "user", image_message(str(i), str(i)), "object_string") for i in range(1, 5)
    ]
    history.append(stored(1, "assistant", image_message("bot", "99"), "object_string"))
    history.append(stored(1, "user", image_message("again", "1"), "object_string"))
    assert image_file_ids(history, [], limit=3) == ["3", "4", "1"]
    assert image_file_ids(history, []) == ["2", "3", "4", "1"]


@dataclass
class ListedTools:
    tools: list[FakeTool]

    async def tools_for(
        self, *, owner_id: int, bot_id: int, bot_version: int, config: pb.BotConfig
    ) -> Sequence[Tool]:
        return self.tools


async def test_combined_sources_list_every_tool_once_the_first_source_winning() -> None:
    plugin = FakeTool("search_knowledge", result="plugin")
    weather = FakeTool("get_weather")
    knowledge = FakeTool("search_knowledge", result="knowledge")
    combined = CombinedToolSource(ListedTools([plugin, weather]), ListedTools([knowledge]))

    tools = await combined.tools_for(owner_id=1, bot_id=2, bot_version=0, config=pb.BotConfig())

    assert tools == [plugin, weather]
