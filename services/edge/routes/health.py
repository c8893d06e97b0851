"""Readiness (/healthz: the edge's dependencies answer) and liveness (/livez: the process
serves HTTP) for load balancers, orchestrators and the test harness; metrics for Prometheus."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

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


@router.get(
    "/livez",
    summary="200 while the process serves HTTP, whatever its dependencies do",
)
async def livez() -> Envelope[HealthView]:
    # Liveness must not follow the registry or NATS: restarting every edge because the
    # registry is down would turn one outage into two. Readiness (/healthz) covers them.
    return ok(HealthView(status="ok"))


# Prometheus' text format, not an envelope: left out of the API's OpenAPI document. Counters
# include requests let through because the rate-limit store was unreachable
# (cozeplus_edge_rate_limit_store_errors_total) and 429s per limit class.
@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
