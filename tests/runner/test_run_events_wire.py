"""RunEvents against a real NATS: the header block the runner lays out itself reads back as
the same headers nats-py's own publish sends (what the edge reads), in order and numbered."""

from __future__ import annotations

import asyncio

import nats
import orjson
from nats.aio.msg import Msg

from cozeplus.chat_protocol import (
    EVENT_HEADER,
    MESSAGE_DELTA,
    PUBLISHER_HEADER,
    SEQ_HEADER,
    SEQ_SENT_HEADER,
)
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.subjects import chat_events
from services.runner.run_events import RunEvents


async def test_events_carry_the_headers_nats_py_would_send(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        got: asyncio.Queue[Msg] = asyncio.Queue()
        sub = await nc.subscribe(chat_events(77), cb=got.put)
        events = RunEvents(nc, chat_id=77, bot_id=5, meta_data={})
        run = cpb.ChatRun(id=77, conversation_id=3, section_id=3, bot_id=5)
        events.open_answer(run, answer_id=78)
        deltas = ["Hel", "lo \u2028 wörld", ""]
        for text in deltas:
            await events.answer_delta(text)
        await events.heartbeat()
        # The same event through nats-py's own header encoding, for comparison.
        reference = {EVENT_HEADER: MESSAGE_DELTA, SEQ_HEADER: "9", PUBLISHER_HEADER: "ref"}
        await nc.publish(chat_events(77), b"{}", headers=reference)
        received = [await asyncio.wait_for(got.get(), 5) for _ in range(len(deltas) + 2)]
        await sub.unsubscribe()
    finally:
        await nc.close()

    *streamed, heartbeat, ours = received
    assert [m.headers for m in streamed] == [
        {EVENT_HEADER: MESSAGE_DELTA, SEQ_HEADER: str(i), PUBLISHER_HEADER: events.publisher_id}
        for i in (1, 2, 3)
    ]
    payloads = [orjson.loads(m.data) for m in streamed]
    assert [(p["event"], p["content"], p["message_item"]["content"]) for p in payloads] == [
        (MESSAGE_DELTA, text, text) for text in deltas
    ]
    assert heartbeat.headers is not None and heartbeat.headers[SEQ_SENT_HEADER] == "3"
    assert ours.headers == reference
