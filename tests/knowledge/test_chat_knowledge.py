"""Chats that use a bot's knowledge and images, end to end: real NATS, registry, edge,
knowledge worker, runner and the mock model over HTTP, driven by cozepy. The mock records
every prompt it receives (/mock/requests), so the tests see what reached the model."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from cozepy import (
    ChatStatus,
    Coze,
    Message,
    MessageObjectString,
    MessageType,
    TokenAuth,
)
from cozepy.bots import BotKnowledge, BotModelInfo, BotPromptInfo

from services.cli.system import ServiceProcess
from services.runner.knowledge_retrieval import KNOWLEDGE_HEADING
from tests.conftest import Account
from tests.knowledge.conftest import wait_processed
from tests.knowledge.test_knowledge_cozepy import add_text, new_dataset

OTTERS = "Sea otters hold hands while they sleep so that they do not drift apart."
PANDAS = "大熊猫每天吃十二公斤竹子，也偶尔吃竹鼠。"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
def chat_kb(knowledge_system: str, runner: ServiceProcess, mock_llm: str) -> str:
    """The system with a runner whose models are served by the mock."""
    return mock_llm


def make_bot(
    coze: Coze,
    account: Account,
    *,
    model: str = "mock",
    dataset_ids: list[str] | None = None,
    auto_call: bool = True,
) -> str:
    bot = coze.bots.create(
        space_id=str(account.user_id),
        name=f"kb-bot-{secrets.token_hex(3)}",
        prompt_info=BotPromptInfo(prompt="You answer from the knowledge base."),
        model_info_config=BotModelInfo(model_id=model),
    )
    if dataset_ids:
        coze.bots.update(
            bot_id=bot.bot_id,
            knowledge=BotKnowledge(dataset_ids=dataset_ids, auto_call=auto_call),
        )
    coze.bots.publish(bot_id=bot.bot_id)
    return bot.bot_id


def prompt_of(mock_url: str, marker: str) -> list[dict[str, Any]]:
    """The last prompt the mock received whose user messages contain `marker`."""
    recorded = httpx.get(f"{mock_url}/mock/requests", params={"limit": 200}).json()
    for body in reversed(recorded):
        messages: list[dict[str, Any]] = body["messages"]
        if any(m["role"] == "user" and marker in str(m.get("content")) for m in messages):
            return messages
    raise AssertionError(f"no prompt with {marker!r} reached the mock")


def system_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(str(m["content"]) for m in messages if m["role"] == "system")


def ask(coze: Coze, bot_id: str, question: str, **kwargs: Any) -> Any:
    chat = coze.chat.create_and_poll(
        bot_id=bot_id,
        user_id="kb-user",
        additional_messages=[Message.build_user_question_text(question)],
        **kwargs,
    )
    assert chat.chat.status == ChatStatus.COMPLETED, chat.chat.last_error
    return chat


def test_auto_call_puts_english_and_chinese_chunks_with_document_names_into_the_prompt(
    coze: Coze, account: Account, chat_kb: str
) -> None:
    dataset_id = new_dataset(coze, account)
    otters = add_text(coze, dataset_id, "otters.txt", OTTERS)
    pandas = add_text(coze, dataset_id, "熊猫.txt", PANDAS)
    wait_processed(coze, dataset_id, [otters, pandas])
    bot_id = make_bot(coze, account, dataset_ids=[dataset_id])

    english = f"What do sea otters do while they sleep? {secrets.token_hex(4)}"
    ask(coze, bot_id, english)
    prompt = system_text(prompt_of(chat_kb, english))
    assert prompt.startswith("You answer from the knowledge base.\n\n" + KNOWLEDGE_HEADING)
    assert f"Document: otters.txt\n{OTTERS}" in prompt
    assert "熊猫.txt" not in prompt

    chinese = f"大熊猫吃什么？{secrets.token_hex(4)}"
    ask(coze, bot_id, chinese)
    prompt = system_text(prompt_of(chat_kb, chinese))
    assert f"Document: 熊猫.txt\n{PANDAS}" in prompt
    assert "otters.txt" not in prompt

    # A deleted document is gone from later prompts.
    coze.datasets.documents.delete(document_ids=[otters])
    again = f"What do sea otters do while they sleep? {secrets.token_hex(4)}"
    ask(coze, bot_id, again)
    prompt = system_text(prompt_of(chat_kb, again))
    assert "otters.txt" not in prompt and OTTERS not in prompt
    assert KNOWLEDGE_HEADING not in prompt


def test_without_auto_call_the_model_calls_search_knowledge_and_reads_the_chunk(
    coze: Coze, account: Account, chat_kb: str
) -> None:
    dataset_id = new_dataset(coze, account)
    otters = add_text(coze, dataset_id, "otters.txt", OTTERS)
    wait_processed(coze, dataset_id, [otters])
    bot_id = make_bot(coze, account, dataset_ids=[dataset_id], auto_call=False)
    key = f"kb-{secrets.token_hex(4)}"
    scripted = httpx.post(
        f"{chat_kb}/mock/scripts",
        json={
            "key": key,
            "rounds": [
                {
                    "tool_calls": [
                        {"name": "search_knowledge", "arguments": {"query": "sea otters sleep"}}
                    ]
                },
                {"reply": "From the knowledge base: {tool_output}"},
            ],
        },
    )
    assert scripted.status_code == 200, scripted.text

    chat = ask(coze, bot_id, f"How do otters sleep? {key}")

    by_type = {m.type: m for m in chat.messages}
    call = orjson.loads(by_type[MessageType.FUNCTION_CALL].content)
    assert call["name"] == "search_knowledge"
    assert call["arguments"] == {"query": "sea otters sleep"}
    output = by_type[MessageType.TOOL_RESPONSE].content
    assert f"Document: otters.txt\n{OTTERS}" in output
    assert OTTERS in by_type[MessageType.ANSWER].content
    recorded = httpx.get(f"{chat_kb}/mock/requests", params={"limit": 200}).json()
    first = next(b for b in recorded if key in str(b["messages"]))
    # Offered as a tool; nothing retrieved before the model asked.
    assert [t["function"]["name"] for t in first["tools"]] == ["search_knowledge"]
    assert KNOWLEDGE_HEADING not in system_text(first["messages"])


def image_question(text: str, file_id: str) -> Message:
    return Message.build_user_question_objects(
        [MessageObjectString.build_text(text), MessageObjectString.build_image(file_id=file_id)]
    )


def image_parts(message: dict[str, Any]) -> list[str]:
    content = message["content"]
    if not isinstance(content, list):
        return []
    return [p["image_url"]["url"] for p in content if p["type"] == "image_url"]


def test_an_uploaded_image_reaches_a_vision_model_as_an_image_part_now_and_in_history(
    coze: Coze,
    account: Account,
    chat_kb: str,
    knowledge_system: str,
    make_account: Callable[..., Account],
) -> None:
    uploaded = coze.files.upload(file=("dot.png", PNG))
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    bot_id = make_bot(coze, account, model="mock-vision")

    marker = f"what is this? {secrets.token_hex(4)}"
    first = coze.chat.create_and_poll(
        bot_id=bot_id, user_id="kb-user", additional_messages=[image_question(marker, uploaded.id)]
    )
    assert first.chat.status == ChatStatus.COMPLETED, first.chat.last_error
    question = prompt_of(chat_kb, marker)[-1]
    assert question["role"] == "user"
    assert image_parts(question) == [data_url]
    assert {"type": "text", "text": marker} in question["content"]

    # The next chat of the conversation still shows the model the image, from history.
    follow_up = f"and its colour? {secrets.token_hex(4)}"
    ask(coze, bot_id, follow_up, conversation_id=first.chat.conversation_id)
    prompt = prompt_of(chat_kb, follow_up)
    assert [url for m in prompt for url in image_parts(m)] == [data_url]

    # A model without vision gets the note; another account's file id stays a note too.
    plain_bot = make_bot(coze, account, model="mock")
    plain = f"no vision {secrets.token_hex(4)}"
    coze.chat.create_and_poll(
        bot_id=plain_bot,
        user_id="kb-user",
        additional_messages=[image_question(plain, uploaded.id)],
    )
    [sent] = [m for m in prompt_of(chat_kb, plain) if m["role"] == "user"]
    assert sent["content"] == f"{plain}\n[image: {uploaded.id}]"

    other = make_account()
    other_coze = Coze(auth=TokenAuth(other.token), base_url=knowledge_system)
    other_bot = make_bot(other_coze, other, model="mock-vision")
    foreign = f"not yours {secrets.token_hex(4)}"
    other_coze.chat.create_and_poll(
        bot_id=other_bot,
        user_id="kb-user",
        additional_messages=[image_question(foreign, uploaded.id)],
    )
    [sent] = [m for m in prompt_of(chat_kb, foreign) if m["role"] == "user"]
    assert image_parts(sent) == [] and f"[image: {uploaded.id}]" in str(sent["content"])
