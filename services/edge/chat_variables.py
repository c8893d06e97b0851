"""The end user's stored variable values (PUT /v1/variables) join a chat's custom_variables,
so the runner's `{{name}}` substitution sees them; the request's own values win."""

from __future__ import annotations

from typing import TypeVar

from cozeplus.rpc.v1 import user_state_pb2 as us
from services.edge.runtime import EdgeRuntime
from services.edge.schemas.chat import ChatOptions

Options = TypeVar("Options", bound=ChatOptions)


async def with_stored_variables(
    runtime: EdgeRuntime, *, owner_id: int, bot_id: int, user_id: str, options: Options
) -> Options:
    if not user_id:
        return options
    reply = await runtime.registry.variables.GetVariables(
        us.GetVariablesRequest(
            scope=us.VariableScope(owner_id=owner_id, bot_id=bot_id, connector_uid=user_id)
        )
    )
    if not reply.values:
        return options
    merged = {v.keyword: v.value for v in reply.values}
    merged.update(options.custom_variables)
    return options.model_copy(update={"custom_variables": merged})
