"""Outcomes a runner is about to store, kept in NATS until the registry has them.

A runner writes a run's outcome (its FinishRun request: status, answer, usage, answer id)
here just before FinishRun, and forgets it once FinishRun landed. If the runner dies in
between, the chat is redelivered to another runner, whose StartRun says `restarted`: that
runner finishes the run with the kept outcome, so an answer already streamed is stored
rather than discarded ("runner lost"). Kept for `OUTCOME_TTL_S`, far beyond the work queue's
ack wait that decides the redelivery."""

from __future__ import annotations

import logging
from typing import Protocol

from nats.js.api import Header, KeyValueConfig, StorageType
from nats.js.client import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KV_OP, KV_PURGE, MSG_ROLLUP_SUBJECT, KeyValue

from cozeplus.rpc.v1 import conversations_pb2 as cpb
from services.runner.run_events import EventPublisher

log = logging.getLogger("cozeplus.runner.outcomes")

OUTCOME_BUCKET = "cozeplus_run_outcomes"
OUTCOME_TTL_S = 600.0


def outcome_bucket_config(replicas: int = 1) -> KeyValueConfig:
    return KeyValueConfig(
        bucket=OUTCOME_BUCKET,
        ttl=OUTCOME_TTL_S,
        history=1,
        replicas=replicas,
        storage=StorageType.FILE,
    )


class RunOutcomes(Protocol):
    """Best effort throughout: NATS being away must never fail a run."""

    async def keep(self, request: cpb.FinishRunRequest) -> None: ...

    async def kept(self, chat_id: int) -> cpb.FinishRunRequest | None: ...

    async def forget(self, chat_id: int) -> None: ...


# KeyValue.purge's message: a purge marker that rolls up (removes) the key's value.
_PURGE_HEADERS = {KV_OP: KV_PURGE, Header.ROLLUP: MSG_ROLLUP_SUBJECT}


class NatsRunOutcomes:
    def __init__(self, js: JetStreamContext, publisher: EventPublisher) -> None:
        self._js = js
        self._publisher = publisher
        self._kv: KeyValue | None = None

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self._js.key_value(OUTCOME_BUCKET)
        return self._kv

    async def keep(self, request: cpb.FinishRunRequest) -> None:
        try:
            await (await self._bucket()).put(str(request.chat_id), request.SerializeToString())
        except Exception as err:
            log.warning("chat %d: could not keep its outcome (%r)", request.chat_id, err)

    async def kept(self, chat_id: int) -> cpb.FinishRunRequest | None:
        try:
            entry = await (await self._bucket()).get(str(chat_id))
        except KeyNotFoundError:
            return None
        except Exception as err:
            log.warning("chat %d: could not read a kept outcome (%r)", chat_id, err)
            return None
        if not entry.value:
            return None
        return cpb.FinishRunRequest.FromString(entry.value)

    async def forget(self, chat_id: int) -> None:
        """KeyValue.purge's message, published without waiting for JetStream's ack (a round
        trip per chat): a purge that does not land leaves an outcome nobody reads, as its
        run has ended, and the bucket's TTL removes it."""
        try:
            await self._publisher.publish(
                f"$KV.{OUTCOME_BUCKET}.{chat_id}", b"", headers=_PURGE_HEADERS
            )
        except Exception as err:
            log.debug("chat %d: could not forget its outcome (%r)", chat_id, err)


class NoOutcomes:
    """For runners without NATS KV (the in-process tests that don't need it)."""

    async def keep(self, request: cpb.FinishRunRequest) -> None:
        return None

    async def kept(self, chat_id: int) -> cpb.FinishRunRequest | None:
        return None

    async def forget(self, chat_id: int) -> None:
        return None
