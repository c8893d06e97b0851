"""/healthz and /metrics for a runner process, served by uvicorn in the runner's loop."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import uvicorn
from prometheus_client import make_asgi_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route


def health_app(is_healthy: Callable[[], bool]) -> Starlette:
    async def healthz(_: Request) -> JSONResponse:
        ok = is_healthy()
        return JSONResponse(
            {"status": "ok" if ok else "unavailable"}, status_code=200 if ok else 503
        )

    return Starlette(routes=[Route("/healthz", healthz), Mount("/metrics", make_asgi_app())])


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
