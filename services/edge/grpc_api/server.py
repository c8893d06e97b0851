"""The gRPC server of the edge: the public API's three services behind ApiInterceptor, plus
grpc.health.v1 and server reflection (both open, for probes and tools), keepalive so long
chat streams survive idle proxies and dead peers are noticed, and TLS when a certificate and
key are configured. It runs on the edge's event loop, beside the HTTP server, sharing its
runtime."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cozeplus.api.v1 import (
    bots_pb2,
    bots_pb2_grpc,
    chat_pb2,
    chat_pb2_grpc,
    conversations_pb2,
    conversations_pb2_grpc,
)
from services.edge.grpc_api.bots import BotServicer
from services.edge.grpc_api.chat import ChatServicer
from services.edge.grpc_api.conversations import ConversationServicer
from services.edge.grpc_api.interceptor import ApiInterceptor
from services.edge.rate_limit import LimitClass
from services.edge.runtime import EdgeRuntime
from services.edge.settings import EdgeSettings

log = logging.getLogger(__name__)

CHAT_SERVICE = chat_pb2.DESCRIPTOR.services_by_name["ChatService"].full_name
BOT_SERVICE = bots_pb2.DESCRIPTOR.services_by_name["BotService"].full_name
CONVERSATION_SERVICE = conversations_pb2.DESCRIPTOR.services_by_name[
    "ConversationService"
].full_name
SERVICE_NAMES = (CHAT_SERVICE, BOT_SERVICE, CONVERSATION_SERVICE)

# The HTTP routes' classes (wire contract section 6), so both transports count alike.
LIMIT_CLASSES = {
    CHAT_SERVICE: LimitClass.CHAT,
    BOT_SERVICE: LimitClass.BOT_INFO,
    CONVERSATION_SERVICE: LimitClass.OTHER,
}


class GrpcApiServer:
    def __init__(self, settings: EdgeSettings, runtime: EdgeRuntime) -> None:
        self._settings = settings
        self._server = grpc.aio.server(
            interceptors=[ApiInterceptor(runtime, LIMIT_CLASSES)],
            options=[
                ("grpc.keepalive_time_ms", int(settings.grpc_keepalive_time_s * 1000)),
                ("grpc.keepalive_timeout_ms", int(settings.grpc_keepalive_timeout_s * 1000)),
                ("grpc.keepalive_permit_without_calls", 1),
                # Clients may ping this often while a stream is quiet.
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                ("grpc.http2.max_pings_without_data", 0),
                ("grpc.max_receive_message_length", settings.max_body_bytes or 4 * 1024 * 1024),
            ],
        )
        chat_pb2_grpc.add_ChatServiceServicer_to_server(ChatServicer(runtime), self._server)
        bots_pb2_grpc.add_BotServiceServicer_to_server(BotServicer(runtime), self._server)
        conversations_pb2_grpc.add_ConversationServiceServicer_to_server(
            ConversationServicer(runtime), self._server
        )
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )
        self.port = 0
        self._credentials: grpc.ServerCredentials | None = None
        if settings.grpc_tls_cert_file and settings.grpc_tls_key_file:
            key = Path(settings.grpc_tls_key_file).read_bytes()
            certificate = Path(settings.grpc_tls_cert_file).read_bytes()
            self._credentials = grpc.ssl_server_credentials([(key, certificate)])

    async def start(self) -> int:
        settings = self._settings
        address = f"{settings.grpc_host or settings.host}:{settings.grpc_port}"
        if self._credentials is not None:
            self.port = self._server.add_secure_port(address, self._credentials)
            scheme = "TLS"
        else:
            self.port = self._server.add_insecure_port(address)
            scheme = "plaintext"
        await self._server.start()
        for service in ("", *SERVICE_NAMES):
            await self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        host = address.rsplit(":", 1)[0]
        # Launchers read the bound port from this line.
        log.info("gRPC API listening on %s:%d (%s)", host, self.port, scheme)
        return self.port

    async def stop(self, grace_s: float) -> None:
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace_s)
