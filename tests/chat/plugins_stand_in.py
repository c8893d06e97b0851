"""A stand-in for the registry's Plugins service, until the plugins work (issue 8) lands:
it resolves the `local` functions a test binds to a bot, over real gRPC, so the runners'
tool resolution runs as in production, credential included (it refuses calls without the
service token, as the registry does). Once the registry serves Plugins, the tests create
local plugins through /v1/plugins instead and this file goes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from concurrent import futures
from contextlib import contextmanager
from typing import Any

import grpc
import orjson

from cozeplus.rpc.v1 import plugins_pb2 as ppb
from cozeplus.rpc.v1 import plugins_pb2_grpc as ppb_grpc
from cozeplus.service_auth import REFUSED_MSG, SERVICE_TOKEN_METADATA, find_token
from services.cli.system import free_port


class PluginsStandIn(ppb_grpc.PluginsServicer):
    def __init__(self) -> None:
        self.tools: dict[int, list[ppb.ResolvedTool]] = {}

    def bind_local(self, bot_id: int, functions: Mapping[str, Mapping[str, Any]]) -> None:
        self.tools[bot_id] = [
            ppb.ResolvedTool(
                name=name,
                description=f"the client's {name}",
                parameters_json=orjson.dumps(schema).decode(),
                plugin_id=7401,
                api_id=7402 + index,
                plugin_type="local",
                operation_name=name,
            )
            for index, (name, schema) in enumerate(functions.items())
        ]

    def ResolveTools(
        self, request: ppb.ResolveToolsRequest, context: Any
    ) -> ppb.ResolveToolsResponse:
        return ppb.ResolveToolsResponse(tools=self.tools.get(request.bot_id, []))


class RequiresServiceToken(grpc.ServerInterceptor):
    """The registry's rule (ServiceTokenInterceptor) for this blocking server: no token, no
    answer, so a runner whose PLUGINS_ADDR channel forgot the credential fails the tests."""

    def __init__(self, token: str) -> None:
        self._token = token

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        if (SERVICE_TOKEN_METADATA, self._token) in (
            handler_call_details.invocation_metadata or ()
        ):
            return continuation(handler_call_details)
        return grpc.unary_unary_rpc_method_handler(_refuse)


def _refuse(request: Any, context: grpc.ServicerContext) -> Any:
    context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSED_MSG)


@contextmanager
def plugins_stand_in() -> Iterator[tuple[str, PluginsStandIn]]:
    servicer = PluginsStandIn()
    token = find_token()
    assert token, "tests/conftest.py sets the service token"
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4), interceptors=[RequiresServiceToken(token)]
    )
    ppb_grpc.add_PluginsServicer_to_server(servicer, server)
    addr = f"127.0.0.1:{free_port()}"
    server.add_insecure_port(addr)
    server.start()
    try:
        yield addr, servicer
    finally:
        server.stop(0)
