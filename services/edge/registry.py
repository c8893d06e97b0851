"""The edge's connection to the bot registry: one grpc.aio channel for all its services, the
service credential, a default deadline and the request's log id on every call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cozeplus.rpc.v1 import (
    conversations_pb2_grpc,
    knowledge_pb2_grpc,
    liveness_pb2_grpc,
    plugins_pb2_grpc,
    registry_pb2_grpc,
    user_state_pb2_grpc,
)
from cozeplus.service_auth import service_aio_channel
from services.edge.log_id import LOG_ID

if TYPE_CHECKING:
    from cozeplus.rpc.v1.conversations_pb2_grpc import ConversationsAsyncStub
    from cozeplus.rpc.v1.knowledge_pb2_grpc import KnowledgeAsyncStub
    from cozeplus.rpc.v1.liveness_pb2_grpc import RunLivenessAsyncStub
    from cozeplus.rpc.v1.plugins_pb2_grpc import PluginsAsyncStub
    from cozeplus.rpc.v1.registry_pb2_grpc import AccountsAsyncStub, BotRegistryAsyncStub
    from cozeplus.rpc.v1.user_state_pb2_grpc import (
        BotPublishingAsyncStub,
        MessageFeedbackAsyncStub,
        VariablesAsyncStub,
    )


# Registry calls one edge has under way at once; the others queue (within their deadline).
MAX_CALLS_IN_FLIGHT = 128


class _CallDefaults(grpc.aio.UnaryUnaryClientInterceptor):
    """Adds a deadline when the caller set none, the log id as `x-log-id` metadata so the
    registry's logs can be joined with ours, and a bound on calls under way."""

    def __init__(self, timeout_s: float, max_in_flight: int = MAX_CALLS_IN_FLIGHT) -> None:
        self.timeout_s = timeout_s
        self._slots = asyncio.Semaphore(max_in_flight)

    async def intercept_unary_unary(
        self,
        continuation: Callable[[Any, Any], Awaitable[Any]],
        client_call_details: Any,
        request: Any,
    ) -> Any:
        metadata = grpc.aio.Metadata(*(client_call_details.metadata or ()))
        metadata.add("x-log-id", LOG_ID.get())
        details = grpc.aio.ClientCallDetails(
            method=client_call_details.method,
            timeout=client_call_details.timeout or self.timeout_s,
            metadata=metadata,
            credentials=client_call_details.credentials,
            wait_for_ready=client_call_details.wait_for_ready,
        )
        # Bounded: 2,000 chats arriving at once sent 2,000 calls down the channel together
        # and some came back CANCELLED; queued here, they wait their turn within the deadline.
        async with self._slots:
            call = await continuation(details, request)
            await call
        return call


class RegistryClient:
    def __init__(self, addr: str, timeout_s: float, service_token: str) -> None:
        self.channel = service_aio_channel(addr, service_token, [_CallDefaults(timeout_s)])
        self.bots: BotRegistryAsyncStub = registry_pb2_grpc.BotRegistryStub(self.channel)
        self.accounts: AccountsAsyncStub = registry_pb2_grpc.AccountsStub(self.channel)
        self.conversations: ConversationsAsyncStub = conversations_pb2_grpc.ConversationsStub(
            self.channel
        )
        self.plugins: PluginsAsyncStub = plugins_pb2_grpc.PluginsStub(self.channel)
        self.publishing: BotPublishingAsyncStub = user_state_pb2_grpc.BotPublishingStub(
            self.channel
        )
        self.feedback: MessageFeedbackAsyncStub = user_state_pb2_grpc.MessageFeedbackStub(
            self.channel
        )
        self.variables: VariablesAsyncStub = user_state_pb2_grpc.VariablesStub(self.channel)
        # EndRun: a cancel no runner confirmed.
        self.liveness: RunLivenessAsyncStub = liveness_pb2_grpc.RunLivenessStub(self.channel)
        self.knowledge: KnowledgeAsyncStub = knowledge_pb2_grpc.KnowledgeStub(self.channel)
        self._health: Any = health_pb2_grpc.HealthStub(self.channel)

    async def is_serving(self, timeout_s: float = 1.0) -> bool:
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        except (TimeoutError, grpc.aio.AioRpcError):
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self) -> None:
        await self.channel.close()
