"""The registry answers only the system's own services: the service credential or nothing,
for every service it serves (accounts, bots, conversations, run liveness, user state,
knowledge, plugins: ResolveTools answers with plugins' decrypted secrets)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import knowledge_pb2 as kpb
from cozeplus.rpc.v1 import liveness_pb2 as lpb
from cozeplus.rpc.v1 import plugins_pb2 as ppb
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1 import user_state_pb2 as us
from cozeplus.rpc.v1.conversations_pb2_grpc import ConversationsStub
from cozeplus.rpc.v1.knowledge_pb2_grpc import KnowledgeStub
from cozeplus.rpc.v1.liveness_pb2_grpc import RunLivenessStub
from cozeplus.rpc.v1.plugins_pb2_grpc import PluginsStub
from cozeplus.rpc.v1.registry_pb2_grpc import AccountsStub, BotRegistryStub
from cozeplus.rpc.v1.user_state_pb2_grpc import (
    BotPublishingStub,
    MessageFeedbackStub,
    VariablesStub,
)
from cozeplus.service_auth import service_channel


@pytest.mark.parametrize("token", [None, "not-the-token", ""])
def test_a_caller_without_the_credential_is_unauthenticated(
    registry_addr: str, token: str | None
) -> None:
    channel = (
        grpc.insecure_channel(registry_addr)
        if token is None
        else service_channel(registry_addr, token)
    )
    with channel:
        for call in (
            lambda: AccountsStub(channel).GetUser(pb.GetUserRequest(username="admin")),
            lambda: AccountsStub(channel).Authenticate(pb.AuthenticateRequest(token="pat_x")),
            lambda: BotRegistryStub(channel).ListDrafts(pb.ListDraftsRequest(owner_id=1)),
            lambda: ConversationsStub(channel).GetChat(cpb.ChatRef(owner_id=1, chat_id=1)),
            lambda: RunLivenessStub(channel).Heartbeat(lpb.HeartbeatRequest(chat_ids=[1])),
            lambda: MessageFeedbackStub(channel).GetFeedback(us.FeedbackRef(owner_id=1)),
            lambda: VariablesStub(channel).GetVariables(us.GetVariablesRequest()),
            lambda: BotPublishingStub(channel).Unpublish(us.UnpublishRequest(owner_id=1)),
            lambda: KnowledgeStub(channel).GetFile(kpb.FileRef(owner_id=1, file_id=1)),
            lambda: PluginsStub(channel).ListPlugins(ppb.ListPluginsRequest(owner_id=1)),
            lambda: PluginsStub(channel).ResolveTools(
                ppb.ResolveToolsRequest(owner_id=1, bot_id=1, bot_version=0)
            ),
        ):
            with pytest.raises(grpc.RpcError) as raised:
                call()
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]


def test_health_stays_open_for_probes(registry_addr: str) -> None:
    with grpc.insecure_channel(registry_addr) as channel:
        health: Any = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_the_credential_opens_the_registry(registry_addr: str) -> None:
    with service_channel(registry_addr) as channel:
        reply = BotRegistryStub(channel).ListDrafts(pb.ListDraftsRequest(owner_id=1))
        assert reply.total >= 0
