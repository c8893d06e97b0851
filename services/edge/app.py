"""Assembles the edge: routers, error handlers, middleware, and the connections opened for the
app's lifetime (registry channel, NATS with the revocation subscription, the chat work queue,
the chat id node lease and the shared rate-limit counters)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from cozeplus.file_store import declare_files_bucket
from cozeplus.published_versions import PublishedVersionCache
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.subjects import AUTH_REVOKED, BOT_CHANGED
from services.edge.chat_fast_path import ChatFastPath
from services.edge.core.auth import Authenticator
from services.edge.core.bus import ChatBus
from services.edge.core.chats import ChatCore, ChatTimings
from services.edge.core.variables import StoredVariables
from services.edge.errors import install_error_handlers
from services.edge.grpc_api.server import GrpcApiServer
from services.edge.limits import RequestLimits
from services.edge.middleware import BodyLimitMiddleware, RequestContextMiddleware
from services.edge.nats_link import NatsLink
from services.edge.rate_limit import LimitClass, RateLimiter
from services.edge.registry import RegistryClient
from services.edge.routes import (
    bots,
    chat,
    conversations,
    health,
    knowledge,
    openai_compat,
    passport,
    pat,
    plugins,
    user_state,
    workspaces,
)
from services.edge.runtime import EdgeRuntime
from services.edge.settings import EdgeSettings


def create_app(settings: EdgeSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = RegistryClient(
            settings.registry_addr, settings.registry_timeout_s, settings.service_token
        )
        authenticator = Authenticator(registry.accounts, settings.auth_cache_ttl_s)
        nats_link = NatsLink(settings.nats_url, replicas=settings.nats_replicas)
        nats_link.subscribe(AUTH_REVOKED, authenticator.on_revoked_message)
        nats_link.on_state_change(authenticator.set_cache_enabled)

        async def fetch_published(owner_id: int, bot_id: int) -> pb.BotVersion:
            return await registry.bots.GetVersion(
                pb.GetVersionRequest(owner_id=owner_id, bot_id=bot_id, version=0)
            )

        published_versions = PublishedVersionCache(fetch_published, settings.bot_cache_ttl_s)
        nats_link.subscribe(BOT_CHANGED, published_versions.on_changed_message)
        nats_link.on_state_change(published_versions.set_enabled)
        # Until NATS is reached the limiter lets requests through (and counts that in
        # /metrics): the edge serves without NATS, so its limits must not need it either.
        rate_limiter = _rate_limiter(settings)
        if rate_limiter is not None:
            rate_limiter.attach(nats_link)
        chat_bus = ChatBus(nats_link, settings.node_id, settings.chat_publish_retry_s)
        nats_link.declare(
            "the files bucket", lambda js: declare_files_bucket(js, nats_link.replicas)
        )
        nats_link.start()
        chat_bus.start()
        chats = ChatCore(
            bus=chat_bus,
            bots=registry.bots,
            conversations=registry.conversations,
            timings=ChatTimings(
                queue_timeout_s=settings.chat_queue_timeout_s,
                runner_lost_s=settings.chat_runner_lost_s,
                cancel_wait_s=settings.chat_cancel_wait_s,
            ),
            variables=StoredVariables(registry.variables),
            published_versions=published_versions,
            liveness=registry.liveness,
            queue_while_recording=settings.chat_queue_while_recording,
        )
        app.state.runtime = EdgeRuntime(
            settings=settings,
            registry=registry,
            nats=nats_link,
            authenticator=authenticator,
            chat=chat_bus,
            chats=chats,
            rate_limiter=rate_limiter,
            limits=RequestLimits.from_settings(settings),
        )
        grpc_server: GrpcApiServer | None = None
        if settings.grpc_port is not None:
            grpc_server = GrpcApiServer(settings, app.state.runtime)
            await grpc_server.start()
        try:
            yield
        finally:
            if grpc_server is not None:
                await grpc_server.stop(settings.grpc_grace_s)
            if rate_limiter is not None:
                await rate_limiter.stop()
            # Before NATS closes: giving the node id back needs the connection.
            await chat_bus.close()
            await nats_link.close()
            await registry.close()

    app = FastAPI(
        title="cozeplus edge",
        version="0.1.0",
        description="Coze Agent API: chats, conversations, bots, sessions and API keys. Every "
        'JSON response is the envelope `{"code": 0, "msg": "success", "data": ...}`; errors '
        "carry the HTTP status in `code`. Streaming chats answer with server-sent events.",
        lifespan=lifespan,
        # An unknown path is a 404 envelope like any other error, not a bodyless redirect
        # to the same path with (or without) a trailing slash.
        redirect_slashes=False,
    )
    install_error_handlers(app)
    for router in (
        health.router,
        passport.router,
        pat.router,
        bots.router,
        chat.router,
        conversations.router,
        plugins.router,
        workspaces.router,
        user_state.router,
        openai_compat.router,
        knowledge.router,
    ):
        app.include_router(router)
    openai_compat.install_error_shape(app)
    # Added first = innermost: the chat fast path is served inside the body limit and the
    # log id middleware, like every route.
    app.add_middleware(ChatFastPath, exception_handlers=app.exception_handlers)
    # Added last = outermost: the log id middleware wraps the 413 of the body limit too.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        path_limits=knowledge.upload_body_limits(settings.max_file_bytes),
    )
    app.add_middleware(RequestContextMiddleware)
    app.openapi = lambda: _openapi_without_422(app)  # type: ignore[method-assign]
    return app


def _rate_limiter(settings: EdgeSettings) -> RateLimiter | None:
    if not settings.rate_limit_enabled:
        return None
    return RateLimiter(
        {
            LimitClass.CHAT: settings.rate_limit_chat,
            LimitClass.BOT_MANAGEMENT: settings.rate_limit_bot_management,
            LimitClass.BOT_INFO: settings.rate_limit_bot_info,
            LimitClass.OTHER: settings.rate_limit_other,
        },
        window_s=settings.rate_limit_window_s,
        replicas=settings.nats_replicas,
    )


def _openapi_without_422(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents a 422 with its own body on every route; validation errors here are
    400 envelopes (already documented), so drop it."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema
