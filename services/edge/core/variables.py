"""The end user's stored variable values (PUT /v1/variables) join a chat's custom_variables,
so the runner's `{{name}}` substitution sees them; the request's own values win. Applied by
the core to every chat it starts, whatever the transport."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from cozeplus.rpc.v1 import user_state_pb2 as us

if TYPE_CHECKING:
    from cozeplus.rpc.v1.user_state_pb2_grpc import VariablesAsyncStub
    from services.edge.core.chats import ChatInput


class StoredVariables:
    def __init__(self, variables: VariablesAsyncStub) -> None:
        self._variables = variables

    async def merged(self, owner_id: int, bot_id: int, chat: ChatInput) -> ChatInput:
        """`chat` with the end user's stored values under its own; unchanged without an end
        user (`user_id`) or stored values."""
        if not chat.user_id:
            return chat
        reply = await self._variables.GetVariables(
            us.GetVariablesRequest(
                scope=us.VariableScope(owner_id=owner_id, bot_id=bot_id, connector_uid=chat.user_id)
            )
        )
        if not reply.values:
            return chat
        merged = {v.keyword: v.value for v in reply.values}
        merged.update(chat.custom_variables)
        return dataclasses.replace(chat, custom_variables=merged)
