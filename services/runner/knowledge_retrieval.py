"""Knowledge for a chat: what a bot's datasets say about the user's question.

Two ways in (wire contract section 8), chosen by the bot's `knowledge.auto_call`:
- auto_call (the default): ChatRun's `_gather_context` step calls `retrieve_for_prompt` with
  the user's latest message before the prompt is built, and the prompt builder appends
  `knowledge_prompt(chunks)`, each chunk under its document's name, to the system prompt.
- otherwise the datasets become the `search_knowledge` tool the model may call
  (services/runner/tools/knowledge.py), which uses the same search and rendering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cozeplus.rpc.v1 import knowledge_pb2 as kpb
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.vocabulary import ToolType

if TYPE_CHECKING:
    from cozeplus.rpc.v1.knowledge_pb2_grpc import KnowledgeAsyncStub

DEFAULT_TOP_K = 5
# Opens the knowledge section of a prompt (and of the search tool's output).
KNOWLEDGE_HEADING = "## Knowledge base"
# Keeps a huge chunk from crowding the conversation out of the model's context.
MAX_CHUNK_CHARS = 4000


@dataclass(frozen=True)
class KnowledgeChunk:
    document_name: str
    content: str
    score: float


def dataset_ids(config: pb.BotConfig) -> list[int]:
    return [t.knowledge_id for t in config.tools if t.type == ToolType.KNOWLEDGE_BASE]


def auto_call(config: pb.BotConfig) -> bool:
    knowledge = config.knowledge
    return knowledge.auto_call if knowledge.HasField("auto_call") else True


async def search(
    knowledge: KnowledgeAsyncStub,
    *,
    owner_id: int,
    config: pb.BotConfig,
    query: str,
    top_k: int = 0,
    timeout_s: float | None = None,
) -> list[KnowledgeChunk]:
    datasets = dataset_ids(config)
    if not datasets or not query.strip():
        return []
    reply = await knowledge.Search(
        kpb.SearchRequest(
            owner_id=owner_id,
            dataset_ids=datasets,
            query=query[:2000],
            top_k=top_k or config.knowledge.top_k or DEFAULT_TOP_K,
            min_score=config.knowledge.min_score,
            strategy=config.knowledge.search_strategy,
        ),
        timeout=timeout_s,
    )
    return [
        KnowledgeChunk(c.document_name, c.content[:MAX_CHUNK_CHARS], c.score) for c in reply.chunks
    ]


async def retrieve_for_prompt(
    knowledge: KnowledgeAsyncStub,
    *,
    owner_id: int,
    config: pb.BotConfig,
    query: str,
    timeout_s: float | None = None,
) -> list[KnowledgeChunk]:
    """The chunks to put in the prompt: none unless the bot auto-calls its datasets. Raises
    when the search fails; the chat step logs that and answers without knowledge."""
    if not auto_call(config):
        return []
    return await search(
        knowledge, owner_id=owner_id, config=config, query=query, timeout_s=timeout_s
    )


def knowledge_prompt(chunks: Sequence[KnowledgeChunk]) -> str:
    """The chunks as the model reads them, each under its document's name."""
    if not chunks:
        return ""
    parts = [
        f"{KNOWLEDGE_HEADING}\n"
        "Excerpts from the knowledge base that may answer the user's question. Answer from "
        "them when they are relevant. Each excerpt is preceded by the name of its document."
    ]
    for index, chunk in enumerate(chunks, start=1):
        parts.append(f"[{index}] Document: {chunk.document_name}\n{chunk.content}")
    return "\n\n".join(parts)
