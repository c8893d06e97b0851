"""The registry process: health, reflection, schema migrations, shutdown, start-up checks."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1.registry_pb2_grpc import BotRegistryStub
from cozeplus.service_auth import service_channel
from services.cli.system import free_port, registry_process
from services.registry.database import alembic_config, create_database_engine
from services.registry.tables import CHUNK_FTS_TABLE, is_model_object, metadata
from tests.registry.conftest import (
    RegistryUnderTest,
    database_for_backend,
    new_account_id,
    start_registry,
)
from tests.registry.rpc_expect import expect_status

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
REGISTRY_SERVICES = (
    "cozeplus.rpc.v1.BotRegistry",
    "cozeplus.rpc.v1.Accounts",
    "cozeplus.rpc.v1.Conversations",
    "cozeplus.rpc.v1.Knowledge",
)


async def test_health_is_serving_overall_and_per_service(
    registry_channel: grpc.aio.Channel,
) -> None:
    health: Any = health_pb2_grpc.HealthStub(registry_channel)  # typed without methods
    for service in ("", *REGISTRY_SERVICES):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == SERVING, service


async def test_reflection_lists_the_services(registry_channel: grpc.aio.Channel) -> None:
    # The reflection stubs are typed for sync channels only; an aio channel works the same.
    stub: Any = reflection_pb2_grpc.ServerReflectionStub(registry_channel)  # type: ignore[arg-type]
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    replies = [reply async for reply in call]

    names = {s.name for s in replies[0].list_services_response.service}
    assert names >= {*REGISTRY_SERVICES, "grpc.health.v1.Health"}


def test_migrated_schema_matches_the_models(registry_under_test: RegistryUnderTest) -> None:
    """The database the real process migrated has exactly the tables the code declares."""
    engine = create_database_engine(registry_under_test.database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"include_name": is_model_object})
            assert compare_metadata(context, metadata) == []
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert context.get_current_revision() == head
    finally:
        engine.dispose()


INITIAL_TABLES = {"users", "sessions", "api_keys", "bots", "bot_versions"}
CONVERSATION_TABLES = {"conversations", "messages", "chat_runs"}
PLUGIN_TABLES = {"plugins", "plugin_tools"}
SDK_SURFACE_TABLES = {"user_emails", "bot_unpublished", "message_feedback", "user_variables"}
LIVENESS_TABLES = {"registry_leases"}
KNOWLEDGE_TABLES = {
    "knowledge_files",
    "knowledge_datasets",
    "knowledge_documents",
    "knowledge_chunks",
}
# SQLite's FTS5 index over the chunks and the shadow tables FTS5 keeps for it.
FTS_TABLES = {
    CHUNK_FTS_TABLE,
    *(f"{CHUNK_FTS_TABLE}_{s}" for s in ("data", "idx", "content", "docsize", "config")),
}


def test_migrations_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'roundtrip.db'}")
    steps: tuple[tuple[str, bool, set[str]], ...] = (
        ("0001", True, INITIAL_TABLES),
        ("0002", True, INITIAL_TABLES | CONVERSATION_TABLES),
        ("0001", False, INITIAL_TABLES),
        ("base", False, set()),
        ("0004", True, INITIAL_TABLES | CONVERSATION_TABLES | PLUGIN_TABLES),
        ("0003", False, INITIAL_TABLES | CONVERSATION_TABLES),
        ("head", True, set(metadata.tables) | FTS_TABLES),
    )
    try:
        for target, upgrade, expected in steps:
            with engine.begin() as connection:
                config = alembic_config(connection)
                if upgrade:
                    command.upgrade(config, target)
                else:
                    command.downgrade(config, target)
            tables = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
            assert tables == expected, target
        assert set(metadata.tables) == (
            INITIAL_TABLES
            | CONVERSATION_TABLES
            | SDK_SURFACE_TABLES
            | LIVENESS_TABLES
            | KNOWLEDGE_TABLES
            | PLUGIN_TABLES
        )
    finally:
        engine.dispose()


def test_migrations_create_the_declared_indexes(tmp_path: Path) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'indexes.db'}")
    try:
        with engine.begin() as connection:
            # At head: later migrations add indexes to these tables too (0008: chat_runs).
            command.upgrade(alembic_config(connection), "head")
        inspector = sa.inspect(engine)
        for table in CONVERSATION_TABLES:
            migrated = {(i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)}
            declared = {
                (index.name, tuple(c.name for c in index.columns))
                for index in metadata.tables[table].indexes
            }
            assert migrated == declared, table
    finally:
        engine.dispose()


async def test_sigterm_turns_health_not_serving_then_exits_cleanly(
    work_dir: Path, nats_url: str
) -> None:
    registry = await asyncio.to_thread(
        start_registry, name="registry-shutdown", work_dir=work_dir, nats_url=nats_url
    )
    try:
        addr = registry.env["COZEPLUS_REGISTRY_LISTEN"]
        async with grpc.aio.insecure_channel(addr) as channel:
            health: Any = health_pb2_grpc.HealthStub(channel)
            watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
            statuses = aiter(watch)
            assert (await anext(statuses)).status == SERVING

            assert registry.process is not None
            registry.process.send_signal(signal.SIGTERM)

            assert (await asyncio.wait_for(anext(statuses), 10)).status == NOT_SERVING
            watch.cancel()
        exit_code = await asyncio.to_thread(registry.process.wait, 15)
        assert exit_code == 0, registry.log_tail()
        assert "registry stopped" in registry.log_tail()
    finally:
        registry.stop()


def test_unknown_default_model_stops_start_up_with_a_clear_message(
    work_dir: Path, nats_url: str
) -> None:
    registry = registry_process(
        data_dir=work_dir / "registry-bad-model",
        port=0,
        nats_url=nats_url,
        log_dir=work_dir / "logs",
        name="registry-bad-model",
        extra_env={"COZEPLUS_REGISTRY_DEFAULT_MODEL": "no-such-model"},
    )
    registry.start()
    try:
        assert registry.process is not None
        exit_code = registry.process.wait(30)
    except subprocess.TimeoutExpired:
        registry.stop()
        raise
    assert exit_code != 0
    assert "default model 'no-such-model' is not in the model catalog" in registry.log_tail()


async def test_unexpected_fault_is_internal_with_a_generic_message_and_a_logged_stack(
    registry_under_test: RegistryUnderTest, registry_channel: grpc.aio.Channel
) -> None:
    bots: Any = BotRegistryStub(registry_channel)
    owner_id = new_account_id()
    bot = await bots.CreateDraft(pb.CreateDraftRequest(owner_id=owner_id, name="doomed"))
    # Corrupt the stored config behind the registry's back: reading it now fails in code
    # that trusts the database, which is a fault of ours, not of the caller.
    engine = create_database_engine(registry_under_test.database_url)
    try:
        with engine.begin() as connection:
            bots_table = metadata.tables["bots"]
            connection.execute(
                sa.update(bots_table)
                .where(bots_table.c.id == bot.id)
                .values(config={"model": "not an object"})
            )
    finally:
        engine.dispose()

    details = await expect_status(
        bots.GetDraft(
            pb.BotRef(owner_id=owner_id, bot_id=bot.id), metadata=(("x-log-id", "trace-42"),)
        ),
        grpc.StatusCode.INTERNAL,
    )

    assert details == "internal error", "no internals may leak to the caller"
    log = registry_under_test.process.log_tail(200)
    assert "GetDraft failed [log id trace-42]" in log
    assert "Traceback" in log


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_replicas_starting_together_share_one_migrated_database(
    backend: str, work_dir: Path, nats_url: str
) -> None:
    with database_for_backend(backend) as database_url:
        # Same data_dir for both, so the SQLite replicas share one file too.
        data_dir = work_dir / f"registry-replicas-{backend}"
        replicas = [
            registry_process(
                data_dir=data_dir,
                port=free_port(),
                nats_url=nats_url,
                database_url=database_url,
                log_dir=work_dir / "logs",
                name=f"registry-replica-{backend}-{n}",
            )
            for n in (1, 2)
        ]
        try:
            for replica in replicas:
                replica.start()
            for replica in replicas:
                replica.wait_ready()
            addrs = [r.env["COZEPLUS_REGISTRY_LISTEN"] for r in replicas]
            bot_ids = set()
            for addr in addrs:
                with service_channel(addr) as channel:
                    bot = BotRegistryStub(channel).CreateDraft(
                        pb.CreateDraftRequest(owner_id=7, name="replicated")
                    )
                    bot_ids.add(bot.id)
            assert len(bot_ids) == 2, "replicas lease different id nodes"
        finally:
            for replica in replicas:
                replica.stop()
