"""What every call of the public gRPC API goes through, in one interceptor: a log id (in
trailing metadata `x-log-id` and every log line), authentication from `authorization:
Bearer <token>` metadata with the HTTP routes' Authenticator (same cache, same revocations),
the account's rate limit with the HTTP routes' counters and class names, and the
translation of errors into status codes.

Health checks and reflection are not methods of this API and pass untouched.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc

from services.edge.core.auth import Principal, unauthorized
from services.edge.core.errors import EdgeError, RateLimited
from services.edge.grpc_api.errors import (
    INTERNAL_MSG,
    status_of_core_error,
    status_of_registry_error,
)
from services.edge.log_id import LOG_ID, new_log_id
from services.edge.rate_limit import LimitClass
from services.edge.runtime import EdgeRuntime

log = logging.getLogger(__name__)

LOG_ID_KEY = "x-log-id"
TOO_MANY_REQUESTS_MSG = "too many requests"

_CALLER: contextvars.ContextVar[Principal] = contextvars.ContextVar("grpc_caller")


def caller() -> Principal:
    """The authenticated account of the call being served."""
    return _CALLER.get()


UnaryBehavior = Callable[[Any, Any], Awaitable[Any]]
# Servicers' streaming methods are async generators.
StreamBehavior = Callable[[Any, Any], Any]


class ApiInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, runtime: EdgeRuntime, limit_classes: Mapping[str, LimitClass]) -> None:
        """`limit_classes`: the rate-limit class of each service, by full service name."""
        self._runtime = runtime
        self._limit_classes = dict(limit_classes)

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        service = method.lstrip("/").split("/", 1)[0]
        limit_class = self._limit_classes.get(service)
        if handler is None or limit_class is None:
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, limit_class, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, limit_class, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _unary(self, method: str, limit_class: LimitClass, behavior: UnaryBehavior) -> Any:
        async def unary(request: Any, context: Any) -> Any:
            log_id = new_log_id()
            token = LOG_ID.set(log_id)
            context.set_trailing_metadata(((LOG_ID_KEY, log_id),))
            try:
                _CALLER.set(await self._admit(context, limit_class))
                return await behavior(request, context)
            except Exception as exc:
                await self._abort(method, context, log_id, exc)
            finally:
                LOG_ID.reset(token)

        return unary

    def _stream(self, method: str, limit_class: LimitClass, behavior: StreamBehavior) -> Any:
        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            log_id = new_log_id()
            token = LOG_ID.set(log_id)
            context.set_trailing_metadata(((LOG_ID_KEY, log_id),))
            try:
                _CALLER.set(await self._admit(context, limit_class))
                # Closed at once when the client goes away, so the chat's session stops
                # listening now, not when the garbage collector gets to it.
                async with contextlib.aclosing(behavior(request, context)) as items:
                    async for item in items:
                        yield item
            except Exception as exc:
                await self._abort(method, context, log_id, exc)
            finally:
                LOG_ID.reset(token)

        return stream

    async def _admit(self, context: Any, limit_class: LimitClass) -> Principal:
        principal = await self._runtime.authenticator.authenticate(_bearer_token(context))
        limiter = self._runtime.rate_limiter
        if limiter is not None:
            decision = await limiter.hit(principal.user_id, limit_class)
            if not decision.allowed:
                raise RateLimited(TOO_MANY_REQUESTS_MSG, decision.reset_after_s)
        return principal

    async def _abort(self, method: str, context: Any, log_id: str, exc: Exception) -> None:
        trailing: tuple[tuple[str, str], ...] = ((LOG_ID_KEY, log_id),)
        if isinstance(exc, grpc.aio.AbortError):
            raise exc  # already a status
        if isinstance(exc, EdgeError):
            code, details = status_of_core_error(exc), exc.msg
            if isinstance(exc, RateLimited):
                trailing += (("retry-after", str(exc.retry_after_s)),)
        elif isinstance(exc, grpc.aio.AioRpcError):
            code, details = status_of_registry_error(exc)
        else:
            log.exception("%s failed", method, exc_info=exc)
            code, details = grpc.StatusCode.INTERNAL, INTERNAL_MSG
        await context.abort(code, details, trailing_metadata=trailing)


def _bearer_token(context: Any) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            scheme, _, token = str(value).partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise unauthorized("malformed authorization metadata: expected 'Bearer <api key>'")
            return token.strip()
    raise unauthorized("missing credentials: send 'authorization: Bearer <api key>' metadata")
