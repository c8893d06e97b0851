"""Entry point: `python -m services.edge` serves the edge with uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from cozeplus import event_loop, heap
from services.edge.app import create_app
from services.edge.http_server import edge_http_protocol
from services.edge.middleware import LogIdFilter
from services.edge.settings import EdgeSettings


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(LogIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(log_id)s] %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


def main() -> None:
    settings = EdgeSettings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    heap.settle()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        # RequestContextMiddleware writes the access log, with the log id.
        access_log=False,
        server_header=False,
        # Slowloris and non-reading clients: see services/edge/http_server.py.
        http=edge_http_protocol(
            header_timeout_s=settings.http_header_timeout_s,
            write_timeout_s=settings.http_write_timeout_s,
            max_head_bytes=settings.http_max_header_bytes,
        ),
        timeout_keep_alive=settings.http_keep_alive_s,
        # uvloop, like the runner and registry (COZEPLUS_EVENT_LOOP=asyncio: asyncio's own).
        # The gRPC API's grpc.aio server shares the loop; it runs on uvloop as the
        # registry's does (tests/grpc_api).
        loop="uvloop" if event_loop.use_uvloop() else "asyncio",
    )


if __name__ == "__main__":
    main()
