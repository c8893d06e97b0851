"""Responses whose bodies are built outside pydantic: chat and message payloads from
`cozeplus.chat_wire` (the same builders the runners use), and server-sent event streams.

Routes returning these declare their documented shape with `response_model`; FastAPI passes
a returned Response through untouched, so the payload is encoded once, by orjson.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from cozeplus.chat_wire import sse_frame
from services.edge.core.session import ChatSession

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


class EventStreamResponse(StreamingResponse):
    """A chat's events as SSE. Starlette cancels the stream when the client disconnects; the
    session's generator then stops listening at once (the chat itself runs on). The extra
    close covers a response that never started streaming."""

    def __init__(self, session: ChatSession) -> None:
        super().__init__(sse_frames(session), headers=SSE_HEADERS)
        self._session = session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._session.close()


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
