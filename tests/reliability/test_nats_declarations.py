"""The shared NATS connection in process, against real nats-server processes: URL lists,
declarations made again after a reconnect to a server that lost its storage, replicas
brought to the setting, and the node id lease taken again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from nats.js.api import StreamConfig
from nats.js.client import JetStreamContext

from cozeplus import ids
from cozeplus.embedded_nats import EmbeddedNats
from cozeplus.nats_connection import NatsConnection, declare_stream, server_list
from services.cli.system import free_port

WAIT_S = 30


def test_server_list_takes_one_url_or_a_comma_separated_list() -> None:
    assert server_list("nats://a:4222") == ["nats://a:4222"]
    assert server_list(" nats://a:1, nats://b:2 ,") == ["nats://a:1", "nats://b:2"]
    assert server_list(["nats://a:1"]) == ["nats://a:1"]
    with pytest.raises(ValueError, match="no NATS server URL"):
        server_list(" , ")


async def test_a_list_with_a_dead_server_connects_to_a_live_one(nats_url: str) -> None:
    link = NatsConnection(f"nats://127.0.0.1:{free_port()},{nats_url}", "test")
    try:
        nc = await asyncio.wait_for(link.connect(), WAIT_S)
        assert nc.is_connected
    finally:
        await link.close()


async def test_declarations_come_back_after_nats_restarts_without_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A short lease so that its refresh runs within the test.
    monkeypatch.setattr(ids, "NODE_LEASE_TTL_S", 1.5)
    port = free_port()
    server = EmbeddedNats(tmp_path / "one", port=port)
    server.start()
    link = NatsConnection(server.url, "test")
    declared_again = asyncio.Event()

    async def declare(js: JetStreamContext) -> None:
        await declare_stream(js, StreamConfig(name="TEST_DECLARED", subjects=["test.declared"]))

    rounds = 0

    async def on_declared() -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 2:
            declared_again.set()

    link.declare("a test stream", declare)
    link.on_declared(on_declared)
    try:
        await asyncio.wait_for(link.connect(), WAIT_S)
        nc = await asyncio.wait_for(link.wait_declared(), WAIT_S)
        async with ids.lease_node_id(nc, "owner-a") as node:
            js = nc.jetstream()
            assert (await js.stream_info("TEST_DECLARED")).config.subjects == ["test.declared"]
            server.stop()
            server = EmbeddedNats(tmp_path / "two", port=port)  # empty storage
            server.start()
            await asyncio.wait_for(declared_again.wait(), WAIT_S)
            assert (await js.stream_info("TEST_DECLARED")).config.subjects == ["test.declared"]
            # The node lease comes back under the same number, for the same owner.
            kv = await js.key_value(ids.NODE_BUCKET)
            async with asyncio.timeout(WAIT_S):
                while True:
                    try:
                        entry = await kv.get(f"node-{node}")
                        break
                    except Exception:
                        await asyncio.sleep(0.1)
            assert entry.value == b"owner-a"
    finally:
        await link.close()
        server.stop()


async def test_replicas_of_an_existing_stream_follow_the_setting(nats_url: str) -> None:
    link = NatsConnection(nats_url, "test")
    try:
        nc = await link.connect()
        js = nc.jetstream()
        config = StreamConfig(name="TEST_REPLICAS", subjects=["test.replicas"], num_replicas=1)
        await declare_stream(js, config)
        await declare_stream(js, config)  # idempotent
        # A single server cannot hold 3 replicas: the update is refused, loudly.
        with pytest.raises(Exception, match=r"(?i)replicas"):
            await declare_stream(
                js, StreamConfig(name="TEST_REPLICAS", subjects=["test.replicas"], num_replicas=3)
            )
        await js.delete_stream("TEST_REPLICAS")
    finally:
        await link.close()
