"""Whether the test PostgreSQL server offers pgvector, and why not when it does not.

CI machines without the extension (Debian bookworm ships no `postgresql-15-pgvector`; it
comes from apt.postgresql.org or a source build) run the brute-force path only.
"""

from __future__ import annotations

import functools

import psycopg
import sqlalchemy as sa


@functools.cache
def pgvector_missing(server_url: str) -> str | None:
    """None when the server can create the `vector` extension, else the reason."""
    url = sa.make_url(server_url).set(drivername="postgresql")
    shown = url.render_as_string(hide_password=True)
    try:
        with psycopg.connect(
            url.render_as_string(hide_password=False), autocommit=True, connect_timeout=3
        ) as connection:
            row = connection.execute(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
    except psycopg.OperationalError as exc:
        return f"PostgreSQL not reachable at {shown}: {exc}"
    if row is None:
        return (
            f"PostgreSQL at {shown} has no pgvector (`vector` extension); install "
            "postgresql-<major>-pgvector from apt.postgresql.org or build pgvector"
        )
    return None
