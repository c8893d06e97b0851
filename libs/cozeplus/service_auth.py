"""The service credential: internal gRPC services (the registry) answer only the system's own
services (edge, runners, the operator CLI).

One shared secret per deployment, `COZEPLUS_SERVICE_TOKEN` (one name for every service, since
every service holds the same secret), sent as `x-cozeplus-service-token` metadata on every
internal call. Servers compare it in constant time and answer UNAUTHENTICATED otherwise.
Two services stay open: grpc.health.v1, so probes (kubelet, load balancers, `cozeplus up`)
need no secret, and server reflection, which describes the protos shipped in the package
anyway (for grpcurl); neither reads or changes data.

Clients get their channels here (`service_channel`, `service_aio_channel`) so no call can
forget the credential. `cozeplus up` generates the token into `<data dir>/service_token` and
hands it to every service; operator commands find it there (or in the environment).
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import grpc

from cozeplus.grpc_channels import RECONNECT_OPTIONS

SERVICE_TOKEN_ENV = "COZEPLUS_SERVICE_TOKEN"
SERVICE_TOKEN_METADATA = "x-cozeplus-service-token"
SERVICE_TOKEN_FILE = "service_token"
HEALTH_SERVICE = "grpc.health.v1.Health"
OPEN_SERVICES = (
    HEALTH_SERVICE,
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
)
MISSING_TOKEN_MSG = (
    "no service token: set COZEPLUS_SERVICE_TOKEN (cozeplus up writes one to "
    "<data dir>/service_token)"
)
REFUSED_MSG = "this is an internal service: calls need the service credential"


# ------------------------------------------------------------------------------ token


def generate_token() -> str:
    return secrets.token_urlsafe(32)


def ensure_token_file(data_dir: Path) -> str:
    """The deployment's token, created on first use (readable by its owner only)."""
    path = data_dir / SERVICE_TOKEN_FILE
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = generate_token()
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


def find_token(data_dir: Path | None = None) -> str:
    """For tools (the operator CLI): the environment's token, else the data dir's file."""
    token = os.environ.get(SERVICE_TOKEN_ENV, "").strip()
    if token:
        return token
    directory = data_dir or Path(os.environ.get("COZEPLUS_DATA_DIR", ".cozeplus"))
    path = directory / SERVICE_TOKEN_FILE
    if path.exists():
        return path.read_text().strip()
    return ""


# ----------------------------------------------------------------------------- client


def _with_token(metadata: Iterable[tuple[str, Any]] | None, token: str) -> list[tuple[str, Any]]:
    return [*(metadata or ()), (SERVICE_TOKEN_METADATA, token)]


class _AioCredential(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
):
    def __init__(self, token: str) -> None:
        self._token = token

    def _details(self, details: Any) -> grpc.aio.ClientCallDetails:
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=details.timeout,
            metadata=grpc.aio.Metadata(*_with_token(details.metadata, self._token)),
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )

    async def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Awaitable[Any]], details: Any, request: Any
    ) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_unary_stream(
        self, continuation: Callable[[Any, Any], Awaitable[Any]], details: Any, request: Any
    ) -> Any:
        return await continuation(self._details(details), request)


class _SyncCallDetails(grpc.ClientCallDetails):
    def __init__(self, details: Any, metadata: list[tuple[str, Any]]) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = tuple(metadata)
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)


class _SyncCredential(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, token: str) -> None:
        self._token = token

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        metadata = _with_token(details.metadata, self._token)
        return continuation(_SyncCallDetails(details, metadata), request)


def service_aio_channel(
    addr: str, token: str, interceptors: Sequence[grpc.aio.ClientInterceptor] = ()
) -> grpc.aio.Channel:
    """An asyncio channel to an internal service, every call carrying the credential, and
    reconnecting quickly (a restarted registry is used at once: cozeplus.grpc_channels)."""
    return grpc.aio.insecure_channel(
        addr, options=RECONNECT_OPTIONS, interceptors=[_AioCredential(token), *interceptors]
    )


def service_channel(addr: str, token: str | None = None) -> grpc.Channel:
    """A blocking channel to an internal service (CLI, tests). `token` None: `find_token()`."""
    credential = _SyncCredential(token if token is not None else find_token())
    return grpc.intercept_channel(
        grpc.insecure_channel(addr, options=RECONNECT_OPTIONS), credential
    )


# ----------------------------------------------------------------------------- server


class ServiceTokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every call without the token, health checks and reflection excepted."""

    def __init__(self, token: str, open_services: Iterable[str] = OPEN_SERVICES) -> None:
        if not token:
            raise ValueError(MISSING_TOKEN_MSG)
        self._token = token.encode()
        self._open = frozenset(open_services)

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        service = handler_call_details.method.lstrip("/").split("/", 1)[0]
        if service in self._open or self._carries_token(handler_call_details):
            return await continuation(handler_call_details)
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return _refusing(handler)

    def _carries_token(self, details: grpc.HandlerCallDetails) -> bool:
        for key, value in details.invocation_metadata or ():
            if key == SERVICE_TOKEN_METADATA:
                given = value.encode() if isinstance(value, str) else bytes(value)
                return hmac.compare_digest(given, self._token)
        return False


async def _refuse(request: Any, context: Any) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSED_MSG)


async def _refuse_stream(request: Any, context: Any) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSED_MSG)
    yield  # pragma: no cover - makes this an async generator


def _refusing(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same kind as `handler` that answers UNAUTHENTICATED."""
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _refuse_stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return grpc.unary_unary_rpc_method_handler(
        _refuse,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
