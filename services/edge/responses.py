"""Responses whose bodies are built outside pydantic: chat and message payloads from
`cozeplus.chat_wire` (the same builders the runners use), and server-sent event streams.

Routes returning these declare their documented shape with `response_model`; FastAPI passes
a returned Response through untouched, so the payload is encoded once, by orjson.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cozeplus.chat_wire import sse_frame
from services.edge.core.session import ChatSession

log = logging.getLogger(__name__)

# Wire contract section 2. Set explicitly rather than through media_type, so they are exactly
# these bytes whatever Starlette's defaults become.
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def envelope_json(data: Any, **beside: Any) -> Response:
    """`{"code": 0, "msg": "success", "data": data}`, plus any top-level fields beside it."""
    body = orjson.dumps({"code": 0, "msg": "success", "data": data, **beside})
    return Response(body, media_type="application/json")


class EventStreamResponse(Response):
    """A chat's events as SSE, written by a plain send loop.

    Not Starlette's StreamingResponse: it runs the body in an anyio task group beside a task
    listening for the disconnect, and tearing that down (cancel scopes, and a task repr
    formatted into the cancel reason) cost more per chat than writing the events (profiled).
    Here the disconnect listener is one plain task that abandons the session: its events
    stop at once and it stops listening (the chat itself runs on)."""

    def __init__(self, session: ChatSession) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers(SSE_HEADERS)
        self._session = session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = self._session
        listener = asyncio.get_running_loop().create_task(_until_disconnect(receive))
        listener.add_done_callback(lambda task: _client_gone(task, session))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for chunk in sse_frames(session):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            listener.cancel()
            await session.close()


def _client_gone(listener: asyncio.Task[None], session: ChatSession) -> None:
    if listener.cancelled():  # the response ended first
        return
    if listener.exception() is not None:  # the server can no longer say; treat as gone
        log.debug("listening for a disconnect failed: %r", listener.exception())
    session.abandon()


async def _until_disconnect(receive: Receive) -> None:
    # The request body has been read: what comes next is the disconnect (the server also
    # says so once the response is complete).
    while (await receive())["type"] != "http.disconnect":
        pass


# At most this many frames go out in one write.
MAX_FRAMES_PER_WRITE = 64


async def sse_frames(session: ChatSession) -> AsyncIterator[bytes]:
    """The chat's events as SSE frames, each payload written as the runner encoded it.

    Frames already queued behind the current one go out in the same write: under load,
    deltas arrive in bursts, and one ASGI send (one HTTP chunk, one socket write) per burst
    costs less than one per event. A lone event is written at once, never held back."""
    frames: list[bytes] = []
    async for event in session.events():
        frames.append(sse_frame(event.name, event.data))
        if not session.pending() or len(frames) >= MAX_FRAMES_PER_WRITE:
            yield b"".join(frames)
            frames.clear()
    if frames:
        yield b"".join(frames)
