"""Alembic environment, driven from code (`services.registry.database.alembic_config`).

The caller passes an open connection in `config.attributes["connection"]`, so
migrations run inside its transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from services.registry.database import MIGRATION_LOCK_KEY, create_database_engine
from services.registry.tables import metadata


def run_migrations(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Replicas starting at once would otherwise race to create the same tables.
            # The lock is released when the transaction ends.
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("pass a connection or set sqlalchemy.url")
    engine = create_database_engine(url)
    try:
        with engine.begin() as own_connection:
            run_migrations(own_connection)
    finally:
        engine.dispose()


def run_offline() -> None:
    """`alembic upgrade --sql`: print the DDL for a DBA instead of running it."""
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
