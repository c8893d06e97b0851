"""A strict reader of the wire contract's SSE framing (section 2), for tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass
class Event:
    name: str
    data: Any
    raw: bytes


def parse_stream(raw: bytes) -> list[Event]:
    """Split a whole stream into events, failing on anything the SDKs would reject."""
    assert raw.endswith(b"\n\n"), f"stream must end with a blank line: {raw[-80:]!r}"
    events = []
    for block in raw[:-2].split(b"\n\n"):
        lines = block.split(b"\n")
        assert len(lines) == 2, f"an event is exactly two lines then a blank one: {block!r}"
        event_line, data_line = lines
        assert event_line.startswith(b"event: "), f"bad event line {event_line!r}"
        assert data_line.startswith(b"data: "), f"bad data line {data_line!r}"
        assert b"\r" not in block
        data = orjson.loads(data_line[len(b"data: ") :])
        events.append(Event(event_line[len(b"event: ") :].decode(), data, block + b"\n\n"))
    return events


def names(events: list[Event]) -> list[str]:
    return [e.name for e in events]


def collapse_deltas(events: list[Event]) -> list[str]:
    """Event names with runs of deltas folded into one, for comparing sequences."""
    out: list[str] = []
    for name in names(events):
        if name == "conversation.message.delta" and out and out[-1] == name:
            continue
        out.append(name)
    return out


SUCCESS = [
    "conversation.chat.created",
    "conversation.chat.in_progress",
    "conversation.message.delta",
    "conversation.message.completed",
    "conversation.chat.completed",
    "conversation.stream.done",
    "done",
]
FAILURE_TAIL = ["conversation.chat.failed", "error", "conversation.stream.done", "done"]
CANCEL_TAIL = ["conversation.chat.canceled", "conversation.stream.done", "done"]
