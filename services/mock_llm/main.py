"""`python -m services.mock_llm` / `cozeplus mock-llm`: run the mock OpenAI-compatible server.

Prints `mock-llm listening on http://HOST:PORT` once it accepts connections (with the real
port when started with --port 0), so a test or script can wait for that line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

import uvicorn

from services.mock_llm.app import create_app
from services.mock_llm.settings import MockLLMSettings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cozeplus mock-llm",
        description="Local OpenAI-compatible mock model server (defaults from "
        "COZEPLUS_MOCK_LLM_* environment variables).",
    )
    p.add_argument("--host")
    p.add_argument("--port", type=int, help="0 picks a free port")
    p.add_argument("--reply", help="the answer text")
    p.add_argument("--echo", action="store_true", default=None, help="answer the last user text")
    p.add_argument("--ttft-ms", type=int, help="delay before the first token")
    p.add_argument("--inter-token-ms", type=int, help="delay between tokens")
    p.add_argument("--tokens-per-chunk", type=int)
    p.add_argument("--fail-after-tokens", type=int, help="-1 never")
    p.add_argument("--fail-mode", choices=["close", "error"])
    p.add_argument("--http-status", type=int, help="answer every chat request with this status")
    usage = p.add_mutually_exclusive_group()
    usage.add_argument("--report-usage", dest="report_usage", action="store_true", default=None)
    usage.add_argument("--no-usage", dest="report_usage", action="store_false")
    p.add_argument("--api-key", help="require this bearer key")
    p.add_argument("--max-recorded-requests", type=int)
    p.add_argument("--log-level")
    p.add_argument("--access-log", action="store_true", default=None)
    return p


def settings_from_args(argv: Sequence[str] | None) -> MockLLMSettings:
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if v is not None}
    return MockLLMSettings(**overrides)


async def serve(settings: MockLLMSettings) -> int:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=settings.access_log,
        # Fewer moving parts than the auto-selected parser; the mock is not about speed.
        http="h11",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            return 1
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    print(f"mock-llm listening on http://{host}:{port}", flush=True)
    await task
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    settings = settings_from_args(argv)
    try:
        return asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
