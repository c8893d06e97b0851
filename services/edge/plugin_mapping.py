"""Translation between the /v1/plugins HTTP shapes and the registry's Plugins messages."""

from __future__ import annotations

import json

from cozeplus.rpc.v1 import plugins_pb2 as ppb
from services.edge.schemas.plugins import PluginAuthOut, PluginIn, PluginOut, PluginToolOut


def spec_from_request(body: PluginIn) -> ppb.PluginSpec:
    spec = ppb.PluginSpec(
        name=body.name,
        description=body.description,
        type=body.type,
        openapi=body.openapi or "",
        server_url=body.server_url or "",
        mcp_url=body.url or "",
        mcp_headers=body.headers or {},
    )
    if body.auth is not None:
        spec.auth.CopyFrom(
            ppb.PluginAuth(
                type=body.auth.type,
                location=body.auth.location or "",
                name=body.auth.name or "",
                value=body.auth.value or "",
            )
        )
    if body.functions is not None:
        spec.functions_json = json.dumps([f.model_dump() for f in body.functions])
    return spec


def plugin_out(plugin: ppb.Plugin) -> PluginOut:
    return PluginOut(
        plugin_id=str(plugin.id),
        name=plugin.name,
        description=plugin.description,
        type=plugin.type,
        tools=[
            PluginToolOut(
                api_id=str(t.api_id),
                name=t.name,
                description=t.description,
                parameters=json.loads(t.parameters_json or "{}"),
            )
            for t in plugin.tools
        ],
        created_at=plugin.created_at,
        updated_at=plugin.updated_at,
        url=plugin.url,
        # Built field by field: the value must never be copied out, whatever the registry sent.
        auth=PluginAuthOut(
            type=plugin.auth.type, location=plugin.auth.location, name=plugin.auth.name
        )
        if plugin.type == "openapi"
        else None,
    )
