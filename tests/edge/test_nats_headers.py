"""The edge's reading of NATS header blocks (services/edge/nats_link.py) gives what nats-py's
own gives, for the headers chats carry and for malformed ones, and is the one its connection
uses."""

from __future__ import annotations

import random

import pytest
from nats.aio.client import Client as NATS

from services.edge.nats_link import NatsLink, parse_header_lines

CASES = [
    b"Cozeplus-Event: conversation.message.delta\r\nCozeplus-Seq: 17\r\n"
    b"Cozeplus-Publisher: 3f2a9c1e\r\n\r\n",
    b"Nats-Msg-Id: 42\r\nA:b\r\nC:\tspaced value \r\n\r\n",
    b"Name With Space: x\r\nok: 1\r\n",
    b"\x1cname: x\r\nname\x1f: y\r\n: empty name\r\nno colon\r\n",
    b"caf\xc3\xa9: x\r\nvalue: caf\xc3\xa9 \xff\xfe\r\n",
    b"dup: 1\r\ndup: 2\r\n\r\n",
    b"",
    b"\r\n\r\n",
]


@pytest.mark.parametrize("raw", CASES)
def test_header_blocks_read_as_nats_py_reads_them(raw: bytes) -> None:
    assert parse_header_lines(raw) == NATS._parse_header_lines(raw)


def test_random_header_blocks_read_as_nats_py_reads_them() -> None:
    pieces = [b"a", b"Z", b":", b" ", b"\t", b"\r\n", b"\r", b"\x1c", b"\x0b", b"\xc3\xa9"]
    pieces += [b"\xff", b"\xe2\x80", b"-", b"\x00", b"\xc2\x85", b"\xe3\x80\x80"]
    rng = random.Random(14)
    for _ in range(20_000):
        raw = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 24)))
        assert parse_header_lines(raw) == NATS._parse_header_lines(raw), raw


async def test_the_edge_connection_reads_headers_with_it(nats_url: str) -> None:
    link = NatsLink(nats_url)
    try:
        nc = await link.connect()
        assert nc._parse_header_lines is parse_header_lines
        subscription = await nc.subscribe("edge.test.headers")
        await nc.publish("edge.test.headers", b"x", headers={"Cozeplus-Seq": "3"})
        message = await subscription.next_msg(timeout=5)
        assert message.headers == {"Cozeplus-Seq": "3"}
        await subscription.unsubscribe()
    finally:
        await link.close()
