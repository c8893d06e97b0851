"""The registry's word on a chat's event subject: a run it ended (the run sweeper, EndRun)
gets its terminal chat event published where the run's open streams listen, in the same
shape a runner publishes (cozeplus.chat_wire), so every edge ends those streams alike."""

from __future__ import annotations

from nats.aio.client import Client as NATS

from cozeplus.chat_protocol import CHAT_CANCELED, CHAT_COMPLETED, CHAT_FAILED, EVENT_HEADER
from cozeplus.chat_wire import chat_event, chat_object
from cozeplus.subjects import chat_cancel, chat_events
from cozeplus.vocabulary import ChatStatus
from services.registry.conversations import ChatRunView
from services.registry.grpc_conversations import run_to_proto

TERMINAL_EVENT = {
    ChatStatus.COMPLETED: CHAT_COMPLETED,
    ChatStatus.FAILED: CHAT_FAILED,
    ChatStatus.CANCELED: CHAT_CANCELED,
}


class NatsRunEndNotifier:
    def __init__(self, nc: NATS) -> None:
        self._nc = nc

    async def run_ended(self, run: ChatRunView) -> None:
        event = TERMINAL_EVENT[ChatStatus(run.status)]
        payload = chat_event(event, chat_object(run_to_proto(run)))
        await self._nc.publish(chat_events(run.id), payload, headers={EVENT_HEADER: event})
        # Should a runner still hold it after all (a live one whose heartbeats did not
        # land), it stops the run; its FinishRun then finds the run ended.
        await self._nc.publish(chat_cancel(run.id), b"")
        await self._nc.flush(timeout=2)
