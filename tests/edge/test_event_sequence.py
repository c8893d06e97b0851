"""The edge's event sequence follower, in process: in-order events pass, duplicates are
dropped, gaps (in the middle, or at the tail as a heartbeat reveals) are counted, a new
publisher starts over, and unnumbered events pass untouched."""

from __future__ import annotations

from cozeplus.chat_protocol import PUBLISHER_HEADER, SEQ_HEADER, SEQ_SENT_HEADER
from services.edge.event_sequence import EventSequence


def event(n: int, publisher: str = "a") -> dict[str, str]:
    return {SEQ_HEADER: str(n), PUBLISHER_HEADER: publisher}


def heartbeat(sent: int, publisher: str = "a") -> dict[str, str]:
    return {SEQ_SENT_HEADER: str(sent), PUBLISHER_HEADER: publisher}


def test_in_order_events_pass_and_nothing_is_lost() -> None:
    seq = EventSequence()
    assert all(seq.accept(event(n)) for n in (1, 2, 3))
    assert seq.accept(heartbeat(3))
    assert (seq.lost, seq.duplicates) == (0, 0)


def test_a_gap_is_counted_and_a_duplicate_dropped() -> None:
    seq = EventSequence()
    assert seq.accept(event(1))
    assert seq.accept(event(4))
    assert seq.lost == 2
    assert not seq.accept(event(4))
    assert not seq.accept(event(2)), "late or duplicate: behind what was written"
    assert seq.duplicates == 2
    assert seq.accept(event(5))
    assert seq.lost == 2


def test_a_heartbeat_reveals_a_lost_tail() -> None:
    seq = EventSequence()
    seq.accept(event(1))
    seq.accept(heartbeat(3))
    assert seq.lost == 2
    seq.accept(heartbeat(3))
    assert seq.lost == 2, "counted once"
    assert seq.accept(event(4))


def test_a_new_publisher_numbers_from_one_and_unnumbered_events_pass() -> None:
    seq = EventSequence()
    seq.accept(event(1, "a"))
    seq.accept(event(2, "a"))
    assert seq.accept(event(1, "b"))
    assert seq.accept({})
    assert seq.accept(None)
    assert seq.accept({SEQ_HEADER: "x", PUBLISHER_HEADER: "b"})
    assert (seq.lost, seq.duplicates) == (0, 0)
