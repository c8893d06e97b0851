"""The runner's heartbeat client against the registry's RunLiveness servicer over real gRPC
(in process, SQLite): held runs stay alive, runs ended elsewhere are stopped, and a registry
that is away costs nothing but a log line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from cozeplus.rpc.v1 import liveness_pb2_grpc as lpb_grpc
from cozeplus.vocabulary import ChatStatus
from services.cli.system import free_port
from services.registry.database import Database
from services.registry.grpc_liveness import RunLivenessServicer
from services.registry.run_liveness import RunLivenessService
from services.runner.liveness import RunHeartbeats
from tests.reliability.test_run_sweeper import OWNER, World


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    db = Database(f"sqlite:///{tmp_path / 'registry.db'}")
    db.upgrade_to_head()
    w = World(db)
    await w.add_bot()
    yield w
    db.close()


@pytest.fixture
async def liveness_addr(world: World) -> AsyncIterator[str]:
    server = grpc.aio.server()
    lpb_grpc.add_RunLivenessServicer_to_server(
        RunLivenessServicer(RunLivenessService(world.db, world.notifier)), server
    )
    addr = f"127.0.0.1:{free_port()}"
    server.add_insecure_port(addr)
    await server.start()
    yield addr
    await server.stop(0)


async def test_held_runs_are_kept_and_ended_ones_are_stopped(
    world: World, liveness_addr: str
) -> None:
    held, ended = await world.started(), await world.started()
    await world.set_columns(held.id, progress_at=1)
    await world.liveness.end_run(
        owner_id=OWNER, chat_id=ended.id, status="canceled", code=0, msg=""
    )
    stopped: list[int] = []
    async with grpc.aio.insecure_channel(liveness_addr) as channel:
        beats = RunHeartbeats(
            lpb_grpc.RunLivenessStub(channel), lambda: [held.id, ended.id], stopped.append
        )
        assert await beats.beat() == [ended.id]
    assert stopped == [ended.id]
    assert (await world.status(held.id)).status == ChatStatus.IN_PROGRESS
    # The heartbeat landed: the run's progress is now, not the stale value set above.
    assert await world.progress_at(held.id) > 1


async def test_a_registry_that_is_away_costs_only_a_log_line() -> None:
    stopped: list[int] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}") as channel:
        beats = RunHeartbeats(
            lpb_grpc.RunLivenessStub(channel), lambda: [1, 2], stopped.append, call_timeout_s=1
        )
        assert await beats.beat() == []
    assert stopped == []
