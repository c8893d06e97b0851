"""Registry replicas starting together on one PostgreSQL database (a Deployment with 2+
replicas, a rolling update) migrate it once, in turn, under the advisory lock, and all come
up on the right schema. Skipped, with the reason, when no PostgreSQL answers."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from services.cli.system import ServiceProcess, free_port, grpc_serving
from services.registry import tables
from services.registry.database import MIGRATION_LOCK_KEY, alembic_config
from services.registry.tables import metadata
from tests.registry.conftest import POSTGRES_URL, fresh_postgres_database

REPLICAS = 4


def registry_replica(n: int, database_url: str, nats_url: str, folder: Path) -> ServiceProcess:
    """`cozeplus registry` exactly as the container runs it."""
    addr = f"127.0.0.1:{free_port()}"
    return ServiceProcess(
        f"registry-replica-{n}",
        "services",
        {
            "COZEPLUS_REGISTRY_LISTEN": addr,
            "COZEPLUS_REGISTRY_DATABASE_URL": database_url,
            "COZEPLUS_REGISTRY_NATS_URL": nats_url,
            "COZEPLUS_REGISTRY_DATA_DIR": str(folder / f"replica-{n}"),
        },
        folder / "logs" / f"registry-replica-{n}.log",
        grpc_serving(addr),
        args=["registry"],
    )


def waiting_for_lock(admin: psycopg.Connection[tuple[object, ...]], database: str) -> int:
    """Backends of `database` queued on an advisory lock (PostgreSQL splits the 64-bit key
    into classid, the high half, and objid, the low half)."""
    row = admin.execute(
        """SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
           WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = %s
             AND l.classid = %s AND l.objid = %s""",
        (database, MIGRATION_LOCK_KEY >> 32, MIGRATION_LOCK_KEY & 0xFFFFFFFF),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


@pytest.mark.timeout(240)
def test_replicas_starting_together_migrate_in_turn_and_all_come_up(
    nats_url: str, tmp_path: Path
) -> None:
    with fresh_postgres_database(POSTGRES_URL) as database_url:
        url = sa.make_url(database_url)
        replicas = [registry_replica(n, database_url, nats_url, tmp_path) for n in range(REPLICAS)]
        holder = psycopg.connect(url.set(drivername="postgresql").render_as_string(False))
        try:
            # Hold the migration lock ourselves, as a replica in mid-migration would.
            holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
            holder.commit()
            for replica in replicas:
                replica.start()

            # Every replica queues on the lock: none migrates, none serves meanwhile.
            deadline = time.monotonic() + 120
            while waiting_for_lock(holder, str(url.database)) < REPLICAS:
                assert all(r.alive for r in replicas), [r.log_tail() for r in replicas]
                assert time.monotonic() < deadline, "replicas never reached the lock"
                time.sleep(0.1)
            assert not any(r.ready() for r in replicas)

            holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
            holder.commit()
            for replica in replicas:
                replica.wait_ready(timeout=120)
        finally:
            for replica in replicas:
                replica.stop()
            holder.close()

        engine = sa.create_engine(url.set(drivername="postgresql+psycopg"))
        try:
            with engine.connect() as connection:
                versions = connection.exec_driver_sql(
                    "SELECT version_num FROM alembic_version"
                ).all()
                head = ScriptDirectory.from_config(alembic_config()).get_current_head()
                assert [v for (v,) in versions] == [head]
                # The tables are exactly what the code declares: nothing missing, nothing twice.
                # Objects the models do not declare (e.g. expression indexes a migration adds)
                # are left out the way migrations/env.py leaves them out, when it does.
                include_name = getattr(tables, "is_model_object", None)
                opts = {"include_name": include_name} if include_name else {}
                context = MigrationContext.configure(connection, opts=opts)
                diff = compare_metadata(context, metadata)
                assert diff == []
        finally:
            engine.dispose()
        for replica in replicas:
            assert "Traceback" not in replica.log_tail(400), replica.log_tail(400)
