from __future__ import annotations

import asyncio
import time

import nats

from cozeplus.ids import MAX_ID, IdGenerator, id_timestamp, lease_node_id


def test_ids_are_unique_increasing_and_below_2_53() -> None:
    generator = IdGenerator(node_id=5)
    ids = [generator.next_id() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(0 < i <= MAX_ID for i in ids)
    assert abs(id_timestamp(ids[-1]) - time.time()) < 5


def test_two_nodes_never_collide() -> None:
    a, b = IdGenerator(node_id=1), IdGenerator(node_id=2)
    ids = [g.next_id() for _ in range(5_000) for g in (a, b)]
    assert len(set(ids)) == len(ids)


async def test_node_leases_are_exclusive_and_released(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        async with lease_node_id(nc, "a") as first, lease_node_id(nc, "b") as second:
            assert first != second
        # Released on exit: the lowest free number is one of theirs again.
        async with lease_node_id(nc, "c") as third:
            assert third == min(first, second)
        leases = await asyncio.gather(*(_lease_once(nc, f"p{i}") for i in range(8)))
        assert len(set(leases)) == 8
    finally:
        await nc.close()


async def _lease_once(nc: nats.NATS, owner: str) -> int:
    async with lease_node_id(nc, owner) as node:
        await asyncio.sleep(0.2)
        return node
