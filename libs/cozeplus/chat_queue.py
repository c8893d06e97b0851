"""The JetStream work queue that carries chat requests from edges to runners.

Both sides declare it idempotently, so either may start first.
"""

from __future__ import annotations

from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.client import JetStreamContext

from cozeplus.nats_connection import declare_stream
from cozeplus.subjects import CHAT_REQUEST_STREAM, CHAT_REQUEST_SUBJECT, CHAT_RUNNER_CONSUMER

# A runner proves it is alive by in-progress acks well inside this window; a runner that
# dies stops acking and its chat is handed to another runner after it.
ACK_WAIT_S = 10.0
# Deliveries before a chat is given up as poisoned (each one a runner that died on it).
MAX_DELIVER = 3
# Publishing the same chat id twice within this window stores it once.
DUPLICATE_WINDOW_S = 120.0


def chat_stream_config(replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=CHAT_REQUEST_STREAM,
        subjects=[CHAT_REQUEST_SUBJECT],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_S,
        max_age=24 * 3600,
        num_replicas=replicas,
    )


async def ensure_chat_stream(js: JetStreamContext, replicas: int = 1) -> None:
    await declare_stream(js, chat_stream_config(replicas))


async def ensure_runner_consumer(js: JetStreamContext) -> None:
    """The runners' durable consumer; declared again after a reconnect, since a NATS that
    lost its storage lost the consumer too (a pull subscription does not recreate it)."""
    await js.add_consumer(CHAT_REQUEST_STREAM, runner_consumer_config())


def runner_consumer_config() -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=CHAT_RUNNER_CONSUMER,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT_S,
        max_deliver=MAX_DELIVER,
        # No cap beyond what runners fetch; each runner bounds its own concurrency.
        max_ack_pending=-1,
    )
