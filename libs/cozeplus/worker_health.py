"""/healthz and /metrics for a worker process (runner, knowledge worker), served by uvicorn
inside the worker's own event loop."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def health_app(is_healthy: Callable[[], bool]) -> Starlette:
    async def healthz(_: Request) -> JSONResponse:
        ok = is_healthy()
        return JSONResponse(
            {"status": "ok" if ok else "unavailable"}, status_code=200 if ok else 503
        )

    # A plain route, not a Mount of prometheus' ASGI app: a Mount answers /metrics with a
    # redirect to /metrics/, which plain clients (httpx, curl without -L) do not follow.
    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics)])


def health_server(host: str, port: int, is_healthy: Callable[[], bool]) -> uvicorn.Server:
    config = uvicorn.Config(
        health_app(is_healthy), host=host, port=port, log_level="warning", lifespan="off"
    )
    return _EmbeddedServer(config)


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server inside another program's loop: the host program owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
