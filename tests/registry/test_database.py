"""The registry's database runner on SQLite: Core work's own transactions, and the writer
thread's hand-off."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.registry.database import Database
from services.registry.tables import metadata

LEASES = metadata.tables["registry_leases"]


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'registry.db'}")
    db.upgrade_to_head()
    yield db
    db.close()


def lease(name: str) -> dict[str, object]:
    return {"name": name, "holder": "h", "expires_at_ms": 1}


def names(connection: sa.Connection) -> list[str]:
    return [str(n) for n in connection.scalars(sa.select(LEASES.c.name).order_by(LEASES.c.name))]


async def test_core_work_commits_or_rolls_back_whole(database: Database) -> None:
    def insert_then_fail(connection: sa.Connection) -> None:
        connection.execute(sa.insert(LEASES), lease("undone"))
        raise RuntimeError("after the insert")

    await database.write_rows(lambda c: c.execute(sa.insert(LEASES), lease("kept")))
    with pytest.raises(RuntimeError, match="after the insert"):
        await database.write_rows(insert_then_fail)

    assert await database.read_rows(names) == ["kept"]


async def test_a_core_write_holds_the_write_lock_from_its_start(
    database: Database, tmp_path: Path
) -> None:
    # BEGIN IMMEDIATE, not DEFERRED: a write transaction that reads first must not find
    # the lock taken by another process when it comes to write.
    def read_only(connection: sa.Connection) -> bool:
        connection.execute(sa.select(LEASES.c.name)).all()
        other = sqlite3.connect(tmp_path / "registry.db", timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return True
        finally:
            other.close()
        return False

    assert await database.write_rows(read_only), "another writer got the lock"
    assert not await database.read_rows(read_only), "a read holds no write lock"


async def test_a_write_whose_caller_gave_up_before_its_turn_does_not_run(
    database: Database,
) -> None:
    release = threading.Event()
    await_turn = asyncio.ensure_future(database.write_rows(lambda _c: release.wait(10)))
    abandoned = asyncio.ensure_future(
        database.write_rows(lambda c: c.execute(sa.insert(LEASES), lease("abandoned")))
    )
    await asyncio.sleep(0.05)
    abandoned.cancel()
    release.set()
    assert await await_turn
    await database.write_rows(lambda c: c.execute(sa.insert(LEASES), lease("later")))

    assert await database.read_rows(names) == ["later"]


async def test_writes_queued_together_commit_together_but_fail_alone(
    database: Database,
) -> None:
    # Held back behind a first write, these three are taken as one group: one transaction,
    # a savepoint each.
    release = threading.Event()
    first = asyncio.ensure_future(database.write_rows(lambda _c: release.wait(10)))
    await asyncio.sleep(0.05)

    def insert_then_fail(connection: sa.Connection) -> None:
        connection.execute(sa.insert(LEASES), lease("b"))
        raise RuntimeError("b failed")

    def insert_and_see(name: str) -> Callable[[sa.Connection], list[str]]:
        def work(connection: sa.Connection) -> list[str]:
            connection.execute(sa.insert(LEASES), lease(name))
            return names(connection)

        return work

    grouped = asyncio.gather(
        database.write_rows(insert_and_see("a")),
        database.write_rows(insert_then_fail),
        database.write_rows(insert_and_see("c")),
        return_exceptions=True,
    )
    await asyncio.sleep(0.05)
    release.set()
    assert await first
    a, b, c = await grouped

    assert a == ["a"]
    assert isinstance(b, RuntimeError) and str(b) == "b failed"
    assert c == ["a", "c"], "b's insert was undone before c ran"
    assert await database.read_rows(names) == ["a", "c"]


async def test_a_group_whose_commit_fails_fails_every_write_in_it(
    database: Database, tmp_path: Path
) -> None:
    release = threading.Event()
    first = asyncio.ensure_future(database.write_rows(lambda _c: release.wait(10)))
    await asyncio.sleep(0.05)

    def insert(name: str) -> Callable[[sa.Connection], None]:
        return lambda connection: connection.execute(sa.insert(LEASES), lease(name))

    def fail_the_commit(connection: sa.Connection) -> None:
        # A deferred foreign key is checked at COMMIT: the whole group's commit fails.
        connection.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
        connection.exec_driver_sql(
            "INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at, revoked_at)"
            " VALUES (1, 424242, 'x', 0, 0, 0)"
        )

    grouped = asyncio.gather(
        database.write_rows(insert("a")),
        database.write_rows(fail_the_commit),
        return_exceptions=True,
    )
    await asyncio.sleep(0.05)
    release.set()
    await first
    a, broken = await grouped

    assert isinstance(a, Exception) and isinstance(broken, Exception)
    assert await database.read_rows(names) == []


async def test_a_constraint_violation_in_a_group_spoils_only_its_own_write(
    database: Database,
) -> None:
    # The primary-key checks of CreateChat and FinishRun fail inside the statement: the
    # shared transaction must go on for the writes after it.
    await database.write_rows(lambda c: c.execute(sa.insert(LEASES), lease("taken")))
    release = threading.Event()
    first = asyncio.ensure_future(database.write_rows(lambda _c: release.wait(10)))
    await asyncio.sleep(0.05)

    def insert_then_collide(connection: sa.Connection) -> None:
        connection.execute(sa.insert(LEASES), lease("undone"))
        connection.execute(sa.insert(LEASES), lease("taken"))

    grouped = asyncio.gather(
        database.write_rows(insert_then_collide),
        database.write_rows(lambda c: c.execute(sa.insert(LEASES), lease("after"))),
        return_exceptions=True,
    )
    await asyncio.sleep(0.05)
    release.set()
    await first
    collided, after = await grouped

    assert isinstance(collided, sa.exc.IntegrityError)
    assert not isinstance(after, BaseException)
    assert await database.read_rows(names) == ["after", "taken"]
