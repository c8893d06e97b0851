"""A real registry process per database backend, so every registry test runs on SQLite
and on PostgreSQL. NATS and the work folder come from the shared tests/conftest.py."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import nats
import psycopg
import pytest
import sqlalchemy as sa
from nats.aio.subscription import Subscription
from psycopg import sql

from cozeplus.rpc.v1.conversations_pb2_grpc import ConversationsStub
from cozeplus.rpc.v1.registry_pb2_grpc import AccountsStub, BotRegistryStub
from cozeplus.service_auth import SERVICE_TOKEN_ENV, service_aio_channel
from cozeplus.subjects import AUTH_REVOKED
from services.cli.system import ServiceProcess, free_port, registry_process

if TYPE_CHECKING:
    from cozeplus.rpc.v1.conversations_pb2_grpc import ConversationsAsyncStub
    from cozeplus.rpc.v1.registry_pb2_grpc import AccountsAsyncStub, BotRegistryAsyncStub

POSTGRES_URL = os.environ.get(
    "COZEPLUS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
# A model beyond the built-in echo, to prove the models file is honoured.
EXTRA_MODEL_ID = "registry-test-model"


@dataclass(frozen=True)
class RegistryUnderTest:
    backend: str
    addr: str
    database_url: str
    process: ServiceProcess


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A uniquely named database on the server, dropped afterwards; skips the caller's
    tests when the server cannot be reached."""
    admin_url = sa.make_url(server_url).set(drivername="postgresql")
    shown = admin_url.render_as_string(hide_password=True)
    try:
        admin = psycopg.connect(
            admin_url.render_as_string(hide_password=False), autocommit=True, connect_timeout=3
        )
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {shown}: {exc}")
    name = f"cozeplus_registry_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def registry_models_file(work_dir: Path) -> Path:
    path = work_dir / "registry-test-models.toml"
    path.write_text(
        f'[models.{EXTRA_MODEL_ID}]\nprovider = "openai"\n'
        'base_url = "http://127.0.0.1:9/v1"\nmodel = "anything"\n'
    )
    return path


def start_registry(
    *,
    name: str,
    work_dir: Path,
    nats_url: str,
    database_url: str = "",
    extra_env: dict[str, str] | None = None,
) -> ServiceProcess:
    process = registry_process(
        data_dir=work_dir / name,
        port=free_port(),
        nats_url=nats_url,
        database_url=database_url,
        log_dir=work_dir / "logs",
        name=name,
        extra_env=extra_env,
    )
    process.start()
    try:
        process.wait_ready()
    except BaseException:
        process.stop()
        raise
    return process


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def registry_under_test(
    request: pytest.FixtureRequest, work_dir: Path, nats_url: str, registry_models_file: Path
) -> Iterator[RegistryUnderTest]:
    backend: str = request.param
    name = f"registry-{backend}"
    env = {
        "COZEPLUS_REGISTRY_MODELS_FILE": str(registry_models_file),
        # MCP discovery may reach the tests' servers on 127.0.0.1, and only there:
        # 127.0.0.2 stays refused, which the plugin tests check with a listener.
        "COZEPLUS_REGISTRY_PLUGIN_ALLOWED_NETWORKS": "127.0.0.1/32",
        "COZEPLUS_REGISTRY_PLUGIN_TIMEOUT_S": "5",
    }
    with database_for_backend(backend) as database_url:
        url = database_url or f"sqlite:///{work_dir / name / 'registry.db'}"
        process = start_registry(
            name=name,
            work_dir=work_dir,
            nats_url=nats_url,
            database_url=database_url,
            extra_env=env,
        )
        try:
            yield RegistryUnderTest(backend, process.env["COZEPLUS_REGISTRY_LISTEN"], url, process)
        finally:
            process.stop()


@contextmanager
def database_for_backend(backend: str) -> Iterator[str]:
    """The database URL to give the registry: empty selects its default SQLite file."""
    if backend == "postgresql":
        with fresh_postgres_database(POSTGRES_URL) as url:
            yield url
    else:
        yield ""


@pytest.fixture(scope="session")
async def registry_channel(
    registry_under_test: RegistryUnderTest,
) -> AsyncIterator[grpc.aio.Channel]:
    async with service_aio_channel(
        registry_under_test.addr, os.environ[SERVICE_TOKEN_ENV]
    ) as channel:
        yield channel


@pytest.fixture
def bots_rpc(registry_channel: grpc.aio.Channel) -> BotRegistryAsyncStub:
    return BotRegistryStub(registry_channel)


@pytest.fixture
def accounts_rpc(registry_channel: grpc.aio.Channel) -> AccountsAsyncStub:
    return AccountsStub(registry_channel)


@pytest.fixture
def conversations_rpc(registry_channel: grpc.aio.Channel) -> ConversationsAsyncStub:
    return ConversationsStub(registry_channel)


def new_account_id() -> int:
    """An owner id no other test uses, so lists and counts see only this test's bots."""
    return secrets.randbelow(1 << 50) + 1


@pytest.fixture
def owner_id() -> int:
    return new_account_id()


@pytest.fixture
def other_owner_id() -> int:
    return new_account_id()


@pytest.fixture
async def revocations(nats_url: str) -> AsyncIterator[Subscription]:
    """Subscribed before the test acts, so no broadcast can be missed."""
    nc = await nats.connect(nats_url)
    subscription = await nc.subscribe(AUTH_REVOKED)
    await nc.flush()
    yield subscription
    await nc.close()
