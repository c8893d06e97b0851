"""/v1/plugins: an account's plugins (wire contract section 7). Thin: validate, call the
registry's Plugins service, shape the answer. Creating, updating and refreshing an MCP
plugin talks to the MCP server, so those calls get a longer deadline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from cozeplus.rpc.v1 import plugins_pb2 as ppb
from services.edge import plugin_mapping
from services.edge.deps import CurrentUser, RateLimitClass, Runtime
from services.edge.rate_limit import LimitClass
from services.edge.runtime import EdgeRuntime
from services.edge.schemas.common import ERROR_RESPONSES, INT32_MAX, EmptyData, Envelope, Id, ok
from services.edge.schemas.plugins import PluginIn, PluginList, PluginOut

# Plugins are bot configuration (docs/plugins.md): creating one may also call out to an MCP
# server, so they count as bot management.
router = APIRouter(
    responses=ERROR_RESPONSES,
    tags=["plugins (/v1)"],
    dependencies=[RateLimitClass(LimitClass.BOT_MANAGEMENT)],
)

# The registry's MCP discovery may take its own timeout (15 s by default) on top of the call.
IMPORT_DEADLINE_S = 30.0


def _import_deadline(runtime: EdgeRuntime) -> float:
    return max(runtime.settings.registry_timeout_s, IMPORT_DEADLINE_S)


@router.post("/v1/plugins", summary="Create a plugin (OpenAPI, MCP or local functions)")
async def create_plugin(body: PluginIn, user: CurrentUser, runtime: Runtime) -> Envelope[PluginOut]:
    plugin = await runtime.registry.plugins.CreatePlugin(
        ppb.CreatePluginRequest(owner_id=user.user_id, spec=plugin_mapping.spec_from_request(body)),
        timeout=_import_deadline(runtime),
    )
    return ok(plugin_mapping.plugin_out(plugin))


@router.get("/v1/plugins", summary="List the account's plugins, newest first")
async def list_plugins(
    user: CurrentUser,
    runtime: Runtime,
    page_num: Annotated[int, Query(ge=1, le=INT32_MAX)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Envelope[PluginList]:
    reply = await runtime.registry.plugins.ListPlugins(
        ppb.ListPluginsRequest(owner_id=user.user_id, page_num=page_num, page_size=page_size)
    )
    return ok(
        PluginList(total=reply.total, items=[plugin_mapping.plugin_out(p) for p in reply.plugins])
    )


@router.get("/v1/plugins/{plugin_id}", summary="A plugin and its tools")
async def get_plugin(
    plugin_id: Annotated[Id, Path()], user: CurrentUser, runtime: Runtime
) -> Envelope[PluginOut]:
    plugin = await runtime.registry.plugins.GetPlugin(
        ppb.PluginRef(owner_id=user.user_id, plugin_id=plugin_id)
    )
    return ok(plugin_mapping.plugin_out(plugin))


@router.put(
    "/v1/plugins/{plugin_id}",
    summary="Re-import a plugin (api_ids of unchanged operations stay the same; "
    "omitted secrets and an omitted OpenAPI document are kept)",
)
async def update_plugin(
    plugin_id: Annotated[Id, Path()], body: PluginIn, user: CurrentUser, runtime: Runtime
) -> Envelope[PluginOut]:
    plugin = await runtime.registry.plugins.UpdatePlugin(
        ppb.UpdatePluginRequest(
            owner_id=user.user_id,
            plugin_id=plugin_id,
            spec=plugin_mapping.spec_from_request(body),
        ),
        timeout=_import_deadline(runtime),
    )
    return ok(plugin_mapping.plugin_out(plugin))


@router.post(
    "/v1/plugins/{plugin_id}/refresh",
    summary="mcp: discover the server's tools again (cozeplus extension)",
)
async def refresh_plugin(
    plugin_id: Annotated[Id, Path()], user: CurrentUser, runtime: Runtime
) -> Envelope[PluginOut]:
    plugin = await runtime.registry.plugins.RefreshPlugin(
        ppb.PluginRef(owner_id=user.user_id, plugin_id=plugin_id),
        timeout=_import_deadline(runtime),
    )
    return ok(plugin_mapping.plugin_out(plugin))


@router.delete("/v1/plugins/{plugin_id}", summary="Delete a plugin")
async def delete_plugin(
    plugin_id: Annotated[Id, Path()], user: CurrentUser, runtime: Runtime
) -> Envelope[EmptyData]:
    await runtime.registry.plugins.DeletePlugin(
        ppb.PluginRef(owner_id=user.user_id, plugin_id=plugin_id)
    )
    return ok(EmptyData())
