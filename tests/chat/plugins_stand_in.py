"""A stand-in for the registry's Plugins service, until the plugins work (issue 8) lands:
it resolves the `local` functions a test binds to a bot, over real gRPC, so the runners'
tool resolution runs as in production. Once the registry serves Plugins, the tests create
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


@contextmanager
def plugins_stand_in() -> Iterator[tuple[str, PluginsStandIn]]:
    servicer = PluginsStandIn()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    ppb_grpc.add_PluginsServicer_to_server(servicer, server)
    addr = f"127.0.0.1:{free_port()}"
    server.add_insecure_port(addr)
    server.start()
    try:
        yield addr, servicer
    finally:
        server.stop(0)
