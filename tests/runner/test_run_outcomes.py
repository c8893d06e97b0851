"""The outcome bucket against a real NATS: what one runner keeps, another reads; forgotten,
it is gone (the purge is published without waiting for JetStream's ack)."""

from __future__ import annotations

import asyncio

import nats

from cozeplus.nats_connection import declare_key_value
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from services.runner.run_outcomes import NatsRunOutcomes, outcome_bucket_config


async def test_a_kept_outcome_is_read_back_until_it_is_forgotten(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await declare_key_value(js, outcome_bucket_config())
        outcomes = NatsRunOutcomes(js, nc)
        request = cpb.FinishRunRequest(owner_id=1, chat_id=424242, answer="the answer")
        await outcomes.keep(request)
        # Another runner's view of the bucket.
        assert await NatsRunOutcomes(js, nc).kept(424242) == request

        await outcomes.forget(424242)
        await nc.flush()
        for _ in range(100):
            if await outcomes.kept(424242) is None:
                break
            await asyncio.sleep(0.02)
        assert await outcomes.kept(424242) is None
        assert await outcomes.kept(999999) is None
    finally:
        await nc.close()
