"""The RunLiveness gRPC servicer: proto messages in, run_liveness calls, proto messages out."""

from __future__ import annotations

from typing import Any

from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import liveness_pb2 as lpb
from cozeplus.rpc.v1 import liveness_pb2_grpc as lpb_grpc
from services.registry.grpc_api import translate_errors
from services.registry.grpc_conversations import run_to_proto
from services.registry.run_liveness import RunLivenessService


class RunLivenessServicer(lpb_grpc.RunLivenessServicer):
    def __init__(self, service: RunLivenessService) -> None:
        self._liveness = service

    @translate_errors
    async def Heartbeat(self, request: lpb.HeartbeatRequest, context: Any) -> lpb.HeartbeatResponse:
        statuses = await self._liveness.heartbeat(list(request.chat_ids))
        return lpb.HeartbeatResponse(
            runs=[lpb.RunState(chat_id=c, status=s) for c, s in statuses.items()]
        )

    @translate_errors
    async def EndRun(self, request: lpb.EndRunRequest, context: Any) -> cpb.ChatRun:
        run = await self._liveness.end_run(
            owner_id=request.owner_id,
            chat_id=request.chat_id,
            status=request.status,
            code=request.last_error.code,
            msg=request.last_error.msg,
        )
        return run_to_proto(run)
