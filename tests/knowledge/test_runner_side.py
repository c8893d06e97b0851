"""The runner's side of knowledge, against the real registry and NATS: retrieval before the
prompt (auto_call), the search tool (no auto_call) and images named by file id."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import nats
import pytest
from cozepy import Coze
from cozepy.datasets.documents import DocumentBase, DocumentSourceInfo

from cozeplus.message_content import parse_content, unresolved_file_ids, with_file_urls
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1.knowledge_pb2_grpc import KnowledgeStub
from cozeplus.service_auth import find_token, service_aio_channel
from cozeplus.vocabulary import PluginType
from services.runner.file_urls import image_urls
from services.runner.knowledge_retrieval import knowledge_prompt, retrieve_for_prompt
from services.runner.tools.knowledge import TOOL_NAME, KnowledgeToolSource
from tests.conftest import Account
from tests.knowledge.conftest import wait_processed
from tests.knowledge.test_knowledge_cozepy import new_dataset

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
async def knowledge_aio(registry_addr: str) -> AsyncIterator[KnowledgeStub]:
    async with service_aio_channel(registry_addr, find_token()) as channel:
        yield KnowledgeStub(channel)


def bot_config(dataset_id: str, **knowledge: object) -> pb.BotConfig:
    return pb.BotConfig(
        tools=[pb.ToolRef(type="knowledge_base", knowledge_id=int(dataset_id))],
        knowledge=pb.KnowledgeSettings(**knowledge),  # type: ignore[arg-type]
    )


async def test_auto_call_retrieves_chunks_with_document_names_and_the_tool_otherwise(
    coze: Coze, account: Account, knowledge_aio: KnowledgeStub
) -> None:
    dataset_id = new_dataset(coze, account)
    created = coze.datasets.documents.create(
        dataset_id=dataset_id,
        document_bases=[
            DocumentBase(
                name="熊猫.txt",
                source_info=DocumentSourceInfo.build_local_file("大熊猫每天吃十二公斤竹子。"),
            ),
            DocumentBase(
                name="otters.txt",
                source_info=DocumentSourceInfo.build_local_file("Sea otters hold hands asleep."),
            ),
        ],
    )
    wait_processed(coze, dataset_id, [d.document_id for d in created])

    auto = bot_config(dataset_id)
    chunks = await retrieve_for_prompt(
        knowledge_aio, owner_id=account.user_id, config=auto, query="熊猫吃什么？"
    )
    assert [c.document_name for c in chunks] == ["熊猫.txt"]
    prompt = knowledge_prompt(chunks)
    assert "Document: 熊猫.txt\n大熊猫每天吃十二公斤竹子。" in prompt
    assert (
        await KnowledgeToolSource(knowledge_aio).tools_for(
            owner_id=account.user_id, bot_id=1, bot_version=0, config=auto
        )
        == []
    )

    manual = bot_config(dataset_id, auto_call=False, search_strategy=20)
    assert (
        await retrieve_for_prompt(
            knowledge_aio, owner_id=account.user_id, config=manual, query="otters"
        )
        == []
    )
    [tool] = await KnowledgeToolSource(knowledge_aio).tools_for(
        owner_id=account.user_id, bot_id=1, bot_version=0, config=manual
    )
    assert tool.definition.name == TOOL_NAME and tool.plugin_type == PluginType.KNOWLEDGE
    found = await tool.call({"query": "sea otters"})
    assert not found.is_error and "Document: otters.txt" in found.content
    assert "No matching" in (await tool.call({"query": "volcano"})).content
    assert (await tool.call({"query": ""})).is_error
    # Another account's bot naming this dataset finds nothing.
    assert await retrieve_for_prompt(knowledge_aio, owner_id=1, config=auto, query="熊猫") == []


async def test_an_uploaded_image_becomes_a_data_url_for_its_owner_only(
    coze: Coze, account: Account, knowledge_aio: KnowledgeStub, nats_url: str
) -> None:
    uploaded = coze.files.upload(file=("dot.png", PNG))
    content = (
        f'[{{"type":"text","text":"what is this?"}},{{"type":"image","file_id":"{uploaded.id}"}}]'
    )
    parts = parse_content(content, "object_string")
    assert unresolved_file_ids(parts) == [uploaded.id]
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        urls = await image_urls(
            knowledge_aio, js, owner_id=account.user_id, file_ids=[uploaded.id, "999", "x"]
        )
        assert list(urls) == [uploaded.id]
        assert urls[uploaded.id] == "data:image/png;base64," + base64.b64encode(PNG).decode()
        resolved = with_file_urls(parts, urls)
        assert resolved[1].url == urls[uploaded.id] and resolved[0] == parts[0]
        assert await image_urls(knowledge_aio, js, owner_id=1, file_ids=[uploaded.id]) == {}
        # Over the size cap, or not an image: left as notes.
        assert (
            await image_urls(
                knowledge_aio, js, owner_id=account.user_id, file_ids=[uploaded.id], max_bytes=10
            )
            == {}
        )
        text = coze.files.upload(file=("notes.txt", b"just words, not pixels"))
        assert (
            await image_urls(knowledge_aio, js, owner_id=account.user_id, file_ids=[text.id]) == {}
        )
    finally:
        await nc.close()
