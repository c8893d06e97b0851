"""A strict decoder of the wire contract's SSE framing (section 2).

Each event is exactly `event: <name>\\n`, `data: <one line of JSON>\\n`, `\\n`. A general SSE
parser would tolerate comments, `id:`/`retry:` fields and multi-line data; this one rejects them,
because a server sending them breaks the official SDKs and we would rather say so than guess.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from coze.errors import CozeStreamError


@dataclass(frozen=True)
class SSEEvent:
    name: str
    data: Any


class SSEDecoder:
    """Feed it the body's bytes as they arrive; it returns the events completed so far."""

    def __init__(self) -> None:
        self._buffer = b""
        self._name: str | None = None
        self._data: Any = None
        self._has_data = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buffer += chunk
        events: list[SSEEvent] = []
        # Only whole lines are decoded: a chunk may end inside a multi-byte UTF-8 character.
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> None:
        """The body ended: anything left over is a truncated event."""
        if self._buffer or self._name is not None:
            raise CozeStreamError(
                f"the event stream ended inside an event: {self._buffer[:80]!r}"
                if self._buffer
                else f"the event stream ended inside the {self._name!r} event"
            )

    def _line(self, raw: bytes) -> SSEEvent | None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CozeStreamError(f"the event stream is not UTF-8: {raw[:80]!r}") from exc
        if self._name is None:
            if not line.startswith("event: "):
                raise CozeStreamError(f"expected an `event: ` line, got {line[:80]!r}")
            self._name = line[len("event: ") :]
            return None
        if not self._has_data:
            if not line.startswith("data: "):
                raise CozeStreamError(
                    f"expected the `data: ` line of {self._name!r}, got {line[:80]!r}"
                )
            try:
                self._data = json.loads(line[len("data: ") :])
            except ValueError as exc:
                raise CozeStreamError(
                    f"the data of {self._name!r} is not one line of JSON: {line[:80]!r}"
                ) from exc
            self._has_data = True
            return None
        if line:
            raise CozeStreamError(f"expected a blank line after {self._name!r}, got {line[:80]!r}")
        event = SSEEvent(self._name, self._data)
        self._name, self._data, self._has_data = None, None, False
        return event
