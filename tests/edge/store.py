"""What an account has in the store, read straight from the registry (not through the edge, so
reads are neither rate limited nor subject to the edge's own bugs): for "nothing lost" checks
after a refused request."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1.conversations_pb2_grpc import ConversationsStub
from cozeplus.rpc.v1.registry_pb2_grpc import BotRegistryStub
from cozeplus.service_auth import service_channel


@dataclass
class Store:
    bots: BotRegistryStub
    conversations: ConversationsStub
    owner_id: int
    # Conversations to read besides those listed under a bot (e.g. created without one).
    conversation_ids: list[int] = field(default_factory=list)

    def snapshot(self) -> list[Any]:
        drafts = self.bots.ListDrafts(
            pb.ListDraftsRequest(owner_id=self.owner_id, page_size=100, page_num=1)
        ).bots
        state: list[Any] = []
        conversation_ids = set(self.conversation_ids)
        for draft in drafts:
            ref = pb.BotRef(owner_id=self.owner_id, bot_id=draft.id)
            state.append(draft)
            state.extend(self.bots.ListVersions(ref).versions)
            listed = self.conversations.ListConversations(
                cpb.ListConversationsRequest(owner_id=self.owner_id, bot_id=draft.id, page_size=50)
            ).conversations
            conversation_ids.update(c.id for c in listed)
        for conversation_id in sorted(conversation_ids):
            ref = cpb.ConversationRef(owner_id=self.owner_id, conversation_id=conversation_id)
            try:
                state.append(self.conversations.GetConversation(ref))
            except grpc.RpcError as exc:
                state.append(exc.code())
                continue
            state.extend(
                self.conversations.ListMessages(
                    cpb.ListMessagesRequest(
                        owner_id=self.owner_id,
                        conversation_id=conversation_id,
                        order="asc",
                        limit=50,
                    )
                ).messages
            )
        return state


@pytest.fixture(scope="session")
def registry_channel_sync(registry_addr: str) -> Iterator[grpc.Channel]:
    with service_channel(registry_addr) as channel:
        yield channel


def store_of(channel: grpc.Channel, owner_id: int) -> Store:
    return Store(BotRegistryStub(channel), ConversationsStub(channel), owner_id)
