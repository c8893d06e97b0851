"""A new conversation's chat is queued while the registry records it. Against real processes:
when the registry is away, the client gets the registry's error and the queued copy is dropped
by the runner (nothing stored, nothing streamed), and chats run again once it is back."""

from __future__ import annotations

import time
from pathlib import Path

from cozeplus.embedded_nats import EmbeddedNats
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1.conversations_pb2_grpc import ConversationsStub
from cozeplus.service_auth import service_channel
from tests.reliability.stack import Stack, stream_chat, temp_dir

DROPPED = "dropped, the registry never recorded it"
WAIT_S = 60


def test_a_chat_the_registry_never_recorded_is_dropped_by_its_runner(
    nats: EmbeddedNats, models_file: Path, mock_llm: str
) -> None:
    stack = Stack(temp_dir("cozeplus-queue-recording-"), nats.url, models_file=models_file)
    stack.start(runners=1)
    try:
        account = stack.account()
        bot_id = stack.bot(account, "mock")
        # The edge's first chat is recorded before it is queued; it learns its registry.
        first = stream_chat(stack.url, account, bot_id, "first")
        assert first.terminal == "completed", first

        stack.registry.stop()
        refused = stream_chat(stack.url, account, bot_id, "while the registry is away")
        assert refused.status == 503, refused
        stack.restart_registry()

        runner = stack.runners[0]
        deadline = time.monotonic() + WAIT_S
        while DROPPED not in runner.log_tail(400):
            assert time.monotonic() < deadline, "the runner never dropped the queued copy"
            time.sleep(0.2)

        # The edge's own channel to the registry reconnects with a backoff: 503 until then.
        after = stream_chat(stack.url, account, bot_id, "after")
        while after.status == 503 and time.monotonic() < deadline:
            time.sleep(0.5)
            after = stream_chat(stack.url, account, bot_id, "after")
        assert after.terminal == "completed", after
        with service_channel(stack.registry_addr) as channel:
            chats = ConversationsStub(channel).ListConversations(
                cpb.ListConversationsRequest(owner_id=account.user_id, bot_id=int(bot_id))
            )
        assert len(chats.conversations) == 2, "nothing recorded for the refused chat"
        assert "could not fail" not in stack.edge.log_tail(400)
    finally:
        stack.stop()
