"""Liveness for load balancers and the test harness."""

from __future__ import annotations

from fastapi import APIRouter

from services.edge.errors import ApiError
from services.edge.runtime import Runtime
from services.edge.schemas.common import ERROR_RESPONSES, Envelope, ResponseModel, ok

router = APIRouter(tags=["health"])


class HealthView(ResponseModel):
    status: str


@router.get(
    "/healthz",
    summary="200 only when the registry and NATS are reachable and chats can be queued",
    responses={503: ERROR_RESPONSES[503]},
)
async def healthz(runtime: Runtime) -> Envelope[HealthView]:
    missing = []
    if not await runtime.registry.is_serving():
        missing.append("registry")
    if not runtime.nats.is_connected:
        missing.append("nats")
    elif not runtime.chat.ready:
        missing.append("chat queue")
    if missing:
        raise ApiError(503, f"not ready: {', '.join(missing)} unavailable")
    return ok(HealthView(status="ok"))
