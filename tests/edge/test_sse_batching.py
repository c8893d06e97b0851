"""SSE writes: frames already queued go out together; a lone frame is never held back."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from cozeplus.chat_wire import sse_frame
from services.edge.core.session import ChatEvent
from services.edge.responses import MAX_FRAMES_PER_WRITE, sse_frames


class Session:
    """Yields events; `pending()` says how many are queued behind the current one."""

    def __init__(self, bursts: list[int]) -> None:
        self.bursts = bursts
        self.behind = 0

    def pending(self) -> int:
        return self.behind

    async def events(self) -> AsyncGenerator[ChatEvent, None]:
        n = 0
        for burst in self.bursts:
            for i in range(burst):
                self.behind = burst - i - 1
                n += 1
                yield ChatEvent("conversation.message.delta", b'{"n":%d}' % n)


async def writes(session: Any) -> list[bytes]:
    return [chunk async for chunk in sse_frames(session)]


def frame(n: int) -> bytes:
    return sse_frame("conversation.message.delta", b'{"n":%d}' % n)


async def test_a_burst_goes_out_in_one_write_and_lone_events_at_once() -> None:
    out = await writes(Session([3, 1, 1]))
    assert out == [frame(1) + frame(2) + frame(3), frame(4), frame(5)]


async def test_a_long_burst_is_split() -> None:
    out = await writes(Session([MAX_FRAMES_PER_WRITE + 1]))
    assert [len(chunk) for chunk in out] == [
        sum(len(frame(n)) for n in range(1, MAX_FRAMES_PER_WRITE + 1)),
        len(frame(MAX_FRAMES_PER_WRITE + 1)),
    ]
