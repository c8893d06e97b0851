"""The system on a 3-node NATS cluster (JetStream, 3 replicas), every service given the list
of URLs. Under chat load the node leading the chat work queue is killed: every chat ends
completed or failed (none hangs, none is lost), and new chats succeed again within a bounded
time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from cozeplus.chat_queue import CHAT_REQUEST_STREAM
from cozeplus.ids import NODE_BUCKET
from services.edge.rate_limit import COUNTS_STREAM, OVERRIDES_BUCKET
from tests.reliability.stack import (
    NatsCluster,
    Stack,
    StreamResult,
    in_threads,
    stream_chat,
    temp_dir,
)

CHATS = 24
WAIT_S = 60


async def _cluster_ready(urls: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            nc = await nats.connect(servers=urls.split(","), connect_timeout=2)
            try:
                await nc.jetstream().account_info()
                return
            finally:
                await nc.close()
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _stream_replicas_and_leader(urls: str) -> tuple[dict[str, int], str]:
    nc = await nats.connect(servers=urls.split(","))
    try:
        js = nc.jetstream()
        replicas = {}
        for stream in (
            CHAT_REQUEST_STREAM,
            COUNTS_STREAM,
            f"KV_{NODE_BUCKET}",
            f"KV_{OVERRIDES_BUCKET}",
        ):
            info = await js.stream_info(stream)
            replicas[stream] = info.config.num_replicas or 1
        leader = (await js.stream_info(CHAT_REQUEST_STREAM)).cluster
        assert leader is not None and leader.leader
        return replicas, leader.leader
    finally:
        await nc.close()


@pytest.fixture
def cluster() -> Iterator[NatsCluster]:
    started = NatsCluster(temp_dir("cozeplus-nats-cluster-")).start()
    try:
        asyncio.run(_cluster_ready(started.urls))
        yield started
    finally:
        started.stop()


def test_losing_the_queue_leader_under_load_ends_every_chat(
    cluster: NatsCluster, models_file: Path, mock_llm: str
) -> None:
    stack = Stack(
        temp_dir("cozeplus-cluster-system-"),
        cluster.urls,
        models_file=models_file,
        registry_env={"COZEPLUS_REGISTRY_NATS_REPLICAS": "3"},
        edge_env={
            "COZEPLUS_EDGE_NATS_REPLICAS": "3",
            "COZEPLUS_EDGE_CHAT_QUEUE_TIMEOUT_S": "10",
            "COZEPLUS_EDGE_CHAT_RUNNER_LOST_S": "5",
        },
        runner_env={"COZEPLUS_RUNNER_NATS_REPLICAS": "3"},
    )
    stack.start(runners=1)
    try:
        replicas, leader = asyncio.run(_stream_replicas_and_leader(cluster.urls))
        assert set(replicas.values()) == {3}, replicas
        account = stack.account()
        bot_id = stack.bot(account, "mock-stream-slow")

        def one_chat(index: int) -> StreamResult:
            time.sleep(index * 0.1)  # a steady arrival of chats across the failover
            return stream_chat(stack.url, account, bot_id, f"chat {index}: say something")

        join = in_threads(CHATS, one_chat)
        time.sleep(1.0)
        cluster.node(leader).kill()
        results = join()

        streams = [r for r in results if r.status == 200]
        for result in results:
            if result.status == 200:
                # Ended, one way or the other: none hangs.
                assert result.terminal in ("completed", "failed"), result.events[-3:]
            else:
                # Refused while the queue had no leader: a clear, retryable error.
                assert result.status == 503, result
        assert streams, "no chat was accepted at all"
        # None lost: every accepted chat ended in the store as well.
        stack.wait_all_terminal(account, [r.chat_id for r in streams], WAIT_S)

        # New chats succeed again within a bounded time.
        deadline = time.monotonic() + WAIT_S
        while True:
            result = stream_chat(stack.url, account, bot_id, "after the failover")
            if result.terminal == "completed":
                break
            assert time.monotonic() < deadline, f"no chat succeeded after the failover: {result}"
            time.sleep(0.5)
        completed = sum(r.terminal == "completed" for r in streams)
        print(f"{len(streams)} of {CHATS} accepted, {completed} completed")
    finally:
        stack.stop()
