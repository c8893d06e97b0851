"""Property tests of the SSE framing: whatever text a model answers (any unicode, line breaks of
every kind, text that looks like SSE fields), the frames the edge writes parse back to the same
events with every reader the wire contract names: the Python SDK's strict decoder
(libs/coze), the tests' strict reader (tests/chat/sse.py) and cozepy, which reads lines the
way httpx splits them (str.splitlines: NEL, U+2028 and U+2029 are line breaks too), with the
body cut into arbitrary chunks."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from cozepy.chat import ChatEvent, _chat_stream_handler
from cozepy.model import Stream
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coze._sse import SSEDecoder
from cozeplus.chat_protocol import (
    CHAT_COMPLETED,
    CHAT_CREATED,
    CHAT_FAILED,
    MESSAGE_COMPLETED,
    MESSAGE_DELTA,
)
from cozeplus.chat_wire import (
    MessageEvents,
    chat_event,
    chat_object,
    message_object,
    sse_frame,
    stream_trailer,
)
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from tests.chat.sse import parse_stream
from tests.fuzz.conftest import case

NAME = "hypothesis: SSE frames through 3 readers"
EXAMPLES = 300
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Everything a line reader might break on, and text that looks like the framing itself.
TRICKY = [
    "\n",
    "\r",
    "\r\n",
    "\n\n",
    "\x85",
    "\u2028",
    "\u2029",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1d",
    "\x1e",
    "\x00",
    "event: done\n",
    "data: {}\n\n",
    ": comment",
    '"',
    "\\",
    "😀",
    "你好",
]
answer_text = st.lists(st.one_of(st.text(), st.sampled_from(TRICKY)), max_size=12).map("".join)


def message(content: str, meta_value: str = "") -> dict[str, Any]:
    return message_object(
        cpb.Message(
            id=7391,
            conversation_id=7390,
            section_id=7390,
            chat_id=7392,
            bot_id=7388,
            role="assistant",
            type="answer",
            content=content,
            content_type="text",
            meta_data_json=orjson.dumps({"k": meta_value}).decode(),
            created_at=1,
            updated_at=1,
        )
    )


def chat(status: str, error_msg: str = "") -> dict[str, Any]:
    run = cpb.ChatRun(
        id=7392, conversation_id=7390, bot_id=7388, section_id=7390, status=status, created_at=1
    )
    if error_msg:
        run.last_error.code = 500
        run.last_error.msg = error_msg
    return chat_object(run)


def stream_for(deltas: list[str], failure: str | None) -> tuple[bytes, list[tuple[str, Any]]]:
    """A whole stream as the edge writes it, and the events it must parse back to."""
    events: list[tuple[str, bytes]] = [(CHAT_CREATED, chat_event(CHAT_CREATED, chat("created")))]
    encoder = MessageEvents(message(""))
    for delta in deltas:
        events.append((MESSAGE_DELTA, encoder.encode(MESSAGE_DELTA, delta)))
    events.append((MESSAGE_COMPLETED, encoder.encode(MESSAGE_COMPLETED, "".join(deltas))))
    if failure is None:
        terminal, final = CHAT_COMPLETED, chat("completed")
    else:
        terminal, final = CHAT_FAILED, chat("failed", failure)
    events.append((terminal, chat_event(terminal, final)))
    events.extend(stream_trailer(terminal, final))
    raw = b"".join(sse_frame(name, data) for name, data in events)
    return raw, [(name, orjson.loads(data)) for name, data in events]


def chunks(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(raw)) for c in cuts} | {0, len(raw)})
    return [raw[a:b] for a, b in itertools.pairwise(points)]


def coze_sdk_events(parts: list[bytes]) -> list[tuple[str, Any]]:
    decoder = SSEDecoder()
    events = [event for part in parts for event in decoder.feed(part)]
    decoder.close()
    return [(e.name, e.data) for e in events]


def _cozepy_stream(parts: list[bytes], handler: Any) -> Stream[Any]:
    """cozepy's own reader: httpx's iter_lines over the chunks, then cozepy's Stream."""

    def body() -> Iterator[bytes]:
        yield from parts

    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())
    return Stream(response, response.iter_lines(), fields=["event", "data"], handler=handler)


def cozepy_events(parts: list[bytes]) -> list[tuple[str, Any]]:
    stream = _cozepy_stream(parts, lambda fields, _raw: (fields["event"], fields["data"]))
    return [(name, orjson.loads(data)) for name, data in stream]


def cozepy_chat_events(parts: list[bytes]) -> list[ChatEvent]:
    """What a cozepy user iterates over (its own handler builds the Message objects)."""
    return list(_cozepy_stream(parts, _chat_stream_handler))


@PROPERTY_SETTINGS
@given(
    deltas=st.lists(answer_text, min_size=1, max_size=5),
    failure=st.one_of(st.none(), answer_text),
    data=st.data(),
)
def test_any_answer_parses_back_with_every_reader(
    deltas: list[str], failure: str | None, data: st.DataObject
) -> None:
    raw, expected = stream_for(deltas, failure)
    parts = chunks(raw, data.draw(st.lists(st.integers(0, len(raw)), max_size=8)))
    with case(NAME, "any answer, any chunking"):
        assert [(e.name, e.data) for e in parse_stream(raw)] == expected
        assert coze_sdk_events(parts) == expected
        assert cozepy_events(parts) == expected
        # What a cozepy user reads: the deltas, each as the model produced it.
        contents = [d["content"] for name, d in cozepy_events(parts) if name == MESSAGE_DELTA]
        assert contents == deltas


@PROPERTY_SETTINGS
@given(content=answer_text, meta_value=answer_text)
def test_cozepy_reads_every_message_event_as_the_model_wrote_it(
    content: str, meta_value: str
) -> None:
    payload = MessageEvents(message("", meta_value)).encode(MESSAGE_DELTA, content)
    with case(NAME, "cozepy Message from a frame"):
        [event] = cozepy_chat_events([sse_frame(MESSAGE_DELTA, payload)])
        assert event.event == MESSAGE_DELTA and event.message is not None
        assert event.message.content == content
        assert event.message.meta_data == {"k": meta_value}


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_the_escaping_is_what_keeps_cozepy_reading(separator: str) -> None:
    """The control for the properties above: the same payload as plain orjson leaves the
    separator raw and cuts cozepy's data line in two (the SDK raises); the wire encoder
    escapes it."""
    content = f"one{separator}two"
    plain = orjson.dumps({**message(""), "event": MESSAGE_DELTA, "content": content})
    assert separator.encode() in plain
    with pytest.raises(ValueError):  # the first half of the line is not JSON
        cozepy_chat_events([sse_frame(MESSAGE_DELTA, plain)])
    payload = MessageEvents(message("")).encode(MESSAGE_DELTA, content)
    assert separator.encode() not in payload
    [event] = cozepy_chat_events([sse_frame(MESSAGE_DELTA, payload)])
    assert event.message is not None and event.message.content == content
