"""What a chat's prompt needs from outside the conversation: knowledge and images.

Gathered by ChatRun's `_gather_context` step, after the run started and before the prompt is
built:

- knowledge: when the bot binds datasets with `auto_call` (the default), the chunks its
  datasets hold about the user's latest question (knowledge_retrieval.py);
- images: for a vision model, each image a user message names by `file_id` (an
  object_string item), read from the object store and inlined as a `data:` URL
  (file_urls.py), in new messages and in history alike. Non-vision models get the
  `[image: <file id>]` text note instead, so nothing is read for them.

`RegistryPromptContext` is the real source (Knowledge RPCs and the NATS object store);
`NO_PROMPT_CONTEXT` gives nothing (runners and tests without knowledge).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from nats.js.client import JetStreamContext

from cozeplus.chat_protocol import InputMessage
from cozeplus.message_content import ContentError, parse_content, unresolved_file_ids
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import registry_pb2 as pb
from services.runner import knowledge_retrieval
from services.runner.file_urls import MAX_IMAGE_BYTES, image_urls
from services.runner.knowledge_retrieval import KnowledgeChunk

if TYPE_CHECKING:
    from cozeplus.rpc.v1.knowledge_pb2_grpc import KnowledgeAsyncStub

# Images inlined per prompt, the newest first: each is read from the object store on every
# chat of the conversation, and providers cap the images of a request.
MAX_IMAGES = 8


@dataclass(frozen=True)
class PromptContext:
    knowledge: Sequence[KnowledgeChunk] = ()
    # file id -> data URL, for the images a vision model is shown.
    file_urls: Mapping[str, str] = field(default_factory=dict)


class PromptContextSource(Protocol):
    async def knowledge(
        self, *, owner_id: int, config: pb.BotConfig, query: str
    ) -> Sequence[KnowledgeChunk]:
        """The chunks for the prompt (none unless the bot auto-calls datasets); raises
        when the search fails (the chat step decides what that means)."""
        ...

    async def images(self, *, owner_id: int, file_ids: Sequence[str]) -> Mapping[str, str]:
        """file id -> data URL for the ids that are the owner's images and small enough."""
        ...


class NoPromptContext:
    async def knowledge(
        self, *, owner_id: int, config: pb.BotConfig, query: str
    ) -> Sequence[KnowledgeChunk]:
        return ()

    async def images(self, *, owner_id: int, file_ids: Sequence[str]) -> Mapping[str, str]:
        return {}


NO_PROMPT_CONTEXT = NoPromptContext()


class RegistryPromptContext:
    def __init__(
        self,
        knowledge: KnowledgeAsyncStub,
        jetstream: Callable[[], JetStreamContext],
        *,
        timeout_s: float = 10.0,
        max_image_bytes: int = MAX_IMAGE_BYTES,
    ) -> None:
        self._knowledge = knowledge
        self._jetstream = jetstream
        self._timeout_s = timeout_s
        self._max_image_bytes = max_image_bytes

    async def knowledge(
        self, *, owner_id: int, config: pb.BotConfig, query: str
    ) -> Sequence[KnowledgeChunk]:
        return await knowledge_retrieval.retrieve_for_prompt(
            self._knowledge,
            owner_id=owner_id,
            config=config,
            query=query,
            timeout_s=self._timeout_s,
        )

    async def images(self, *, owner_id: int, file_ids: Sequence[str]) -> Mapping[str, str]:
        if not file_ids:
            return {}
        return await image_urls(
            self._knowledge,
            self._jetstream(),
            owner_id=owner_id,
            file_ids=file_ids,
            max_bytes=self._max_image_bytes,
        )


# ------------------------------------------------------------- reading the conversation


@dataclass(frozen=True)
class _Content:
    role: str
    content: str
    content_type: str
    type: str


def _contents(
    history: Iterable[cpb.Message],
    new_messages: Iterable[InputMessage],
    chat_messages: Iterable[cpb.Message],
) -> list[_Content]:
    """The conversation in prompt order: history, the new messages, the chat's own."""
    out = [_Content(m.role, m.content, m.content_type, m.type) for m in history]
    out.extend(_Content(m.role, m.content, m.content_type, m.type) for m in new_messages)
    out.extend(_Content(m.role, m.content, m.content_type, m.type) for m in chat_messages)
    return [c for c in out if c.role == "user" and c.content]


def latest_question(
    history: Iterable[cpb.Message],
    new_messages: Iterable[InputMessage],
    chat_messages: Iterable[cpb.Message] = (),
) -> str:
    """The text of the user's latest message (a resumed chat's is among its own messages)."""
    for item in reversed(_contents(history, new_messages, chat_messages)):
        try:
            parts = parse_content(item.content, item.content_type, item.type)
        except ContentError:
            return item.content
        text = " ".join(p.text for p in parts if p.kind == "text" and p.text).strip()
        if text:
            return text  # an image-only message: look further back for words
    return ""


def image_file_ids(
    history: Iterable[cpb.Message],
    new_messages: Iterable[InputMessage],
    chat_messages: Iterable[cpb.Message] = (),
    limit: int = MAX_IMAGES,
) -> list[str]:
    """Uploaded images the user's messages name by file id, the newest `limit` of them.
    Only user messages: the API takes image parts nowhere else."""
    ids: list[str] = []
    for item in _contents(history, new_messages, chat_messages):
        try:
            parts = parse_content(item.content, item.content_type, item.type)
        except ContentError:
            continue
        ids.extend(unresolved_file_ids(parts))
    unique = list(dict.fromkeys(reversed(ids)))[:limit]
    unique.reverse()
    return unique
