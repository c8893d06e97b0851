"""Follows one chat's event sequence numbers as they arrive from NATS (core NATS delivers at
most once: an event can be lost at a NATS restart, or delivered twice by a publish retried
across a reconnect). Duplicates are dropped; gaps are counted, so the chat session can check
what it streamed against the stored answer at the end (services/edge/core/session.py).

Numbers come from the runner (chat_protocol.SEQ_HEADER): events 1, 2, 3, ... per publisher;
a heartbeat names the last number sent, so even a lost tail shows. Events without numbers
(the registry's, which end a chat) are taken as they are."""

from __future__ import annotations

from collections.abc import Mapping

from cozeplus.chat_protocol import PUBLISHER_HEADER, SEQ_HEADER, SEQ_SENT_HEADER


def _number(headers: Mapping[str, str], name: str) -> int | None:
    # A lookup, not headers[name] in a try: most events lack one of the two headers, and a
    # raised KeyError per event showed in profiles.
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


class EventSequence:
    def __init__(self) -> None:
        self._publisher = ""
        self._next = 1
        # Events known lost, and duplicates dropped, so far.
        self.lost = 0
        self.duplicates = 0

    def accept(self, headers: Mapping[str, str] | None) -> bool:
        """Whether to keep this message (False: a duplicate)."""
        if not headers:
            return True
        publisher = headers.get(PUBLISHER_HEADER, "")
        if not publisher:
            return True
        if publisher != self._publisher:
            # Another runner took the chat over (a redelivery): it numbers from 1.
            self._publisher, self._next = publisher, 1
        sent = _number(headers, SEQ_SENT_HEADER)
        if sent is not None:
            self._skip_to(sent + 1)
            return True
        number = _number(headers, SEQ_HEADER)
        if number is None:
            return True
        if number < self._next:
            self.duplicates += 1
            return False
        self._skip_to(number)
        self._next = number + 1
        return True

    def _skip_to(self, number: int) -> None:
        if number > self._next:
            self.lost += number - self._next
            self._next = number
