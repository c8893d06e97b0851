"""Database engines, one transaction per call on worker threads, and migrations.

SQLAlchemy sessions are blocking, so every unit of work runs on a small thread pool
sized to the connection pool: the event loop never waits on the database, and a
thread never waits on a connection.

SQLite allows one writer at a time. Writes therefore run on a single writer thread of
their own, queued in order: before, eight threads raced for the write lock and the
losers slept in SQLite's busy handler (1, 2, 5, ... 100 ms backoff, seen as
`clock_nanosleep` in profiles), which were the registry's tail stalls under load.
Readers never wait under WAL. The busy timeout stays for other processes (a second
registry, a migration, the sqlite3 shell). PostgreSQL runs reads and writes on the
pooled threads alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlmodel import Session

from services.registry.errors import Unavailable

DB_THREADS = 8
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# How long a SQLite writer waits for the file lock held by another process before giving up.
SQLITE_LOCK_TIMEOUT_S = 30.0
# SQLite page cache per connection, in KiB (negative: the PRAGMA's unit is KiB).
SQLITE_CACHE_KIB = 16 * 1024
# PostgreSQL advisory lock held while migrating (migrations/env.py), so registry replicas
# starting together migrate one after another. Any constant works if every replica uses it.
MIGRATION_LOCK_KEY = 0x636F7A65706C7573  # "cozeplus"

T = TypeVar("T")

log = logging.getLogger(__name__)


def normalize_database_url(url: str) -> sa.URL:
    """Pin PostgreSQL URLs to psycopg 3, the driver we ship, whatever scheme was given."""
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database {parsed.drivername!r}: use sqlite or postgresql")
    return parsed


def create_database_engine(url: str | sa.URL, *, sqlite_begin_event: bool = True) -> sa.Engine:
    """`sqlite_begin_event` False: SQLite connections whose caller issues BEGIN itself (see
    `Database.read_rows`); any connection event listener makes SQLAlchemy dispatch events
    around every statement, about a quarter of a cached Core statement's cost."""
    parsed = normalize_database_url(str(url) if isinstance(url, sa.URL) else url)
    if parsed.get_backend_name() == "sqlite":
        return _create_sqlite_engine(parsed, begin_event=sqlite_begin_event)
    return sa.create_engine(
        parsed,
        pool_size=DB_THREADS,
        max_overflow=0,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 10},
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
    )


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _create_sqlite_engine(url: sa.URL, *, begin_event: bool) -> sa.Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        pool_size=DB_THREADS,
        max_overflow=0,
        connect_args={"check_same_thread": False, "timeout": SQLITE_LOCK_TIMEOUT_S},
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
    )

    @event.listens_for(engine, "connect")
    def configure_connection(dbapi_connection: Any, _record: Any) -> None:
        # Take over BEGIN from the sqlite3 module (see begin_transaction).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit is durable once the WAL is synced at checkpoint; a power
        # loss can lose the last commits but never corrupts the file.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_LOCK_TIMEOUT_S * 1000)}")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    if begin_event:

        @event.listens_for(engine, "begin")
        def begin_transaction(connection: sa.Connection) -> None:
            connection.exec_driver_sql(sqlite_begin(connection.get_execution_options()))

    return engine


def sqlite_begin(options: Mapping[str, Any]) -> str:
    """A deferred transaction that reads and then writes cannot wait for the write lock:
    SQLite fails it at once with "database is locked". Writers therefore begin IMMEDIATE,
    which takes the lock up front and queues behind the busy timeout; readers stay
    DEFERRED and never block anyone under WAL."""
    return f"BEGIN {options.get('sqlite_begin', 'DEFERRED')}"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """Alembic configured in code: no alembic.ini to ship or to find."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


class WriterThread:
    """SQLite's one writer: a thread running write jobs in the order they come.

    Lighter than a one-thread ThreadPoolExecutor behind `run_in_executor`, which wraps each
    job in a concurrent.futures.Future (a Condition, an RLock) chained to an asyncio
    future, per job: under load that hand-off was a tenth of the event loop's time. Here
    a job is a queue entry and its asyncio future, settled on the loop's thread.

    Group commit: Core jobs (`submit_rows`) found waiting together, up to
    MAX_GROUP_COMMIT, run in one transaction, each in a savepoint of its own, so a job
    that fails is undone alone and reports its own error. The group commits once: the
    pages its jobs share (the newest leaf of each table and index) go to the WAL once
    instead of once per job. Results are handed back after the commit, and a failed
    commit fails every job of the group. A job alone runs in its own transaction, as
    do ORM jobs (`submit`).
    """

    def __init__(self, name: str, rows_engine: sa.Engine) -> None:
        # Begins IMMEDIATE (see sqlite_begin) and has no BEGIN event of its own.
        self._rows_engine = rows_engine
        self._jobs: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        # A daemon: a process that exits without close() must not hang on the idle thread
        # (SQLite rolls back a transaction cut short by the exit).
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, work: Callable[[], T]) -> asyncio.Future[T]:
        """`work` makes its own transaction."""
        return self._put(work, None)

    def submit_rows(self, work: Callable[[sa.Connection], T]) -> asyncio.Future[T]:
        """`work` runs in a transaction it may share with others (see the class doc)."""
        return self._put(None, work)

    def _put(
        self, alone: Callable[[], T] | None, rows: Callable[[sa.Connection], T] | None
    ) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(alone, rows, loop, future))
        return future

    def shutdown(self) -> None:
        """Runs what is queued, then stops."""
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        carried: _Job[Any] | None = None
        stopping = False
        while True:
            if carried is not None:
                job, carried = carried, None
            else:
                taken = None if stopping else self._jobs.get()
                if taken is None:
                    return
                job = taken
            group = [job]
            while job.rows is not None and len(group) < MAX_GROUP_COMMIT:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None or more.rows is None:
                    stopping, carried = more is None, more
                    break
                group.append(more)
            # A caller that gave up before its turn (a deadline) has nothing to wait for,
            # as with an executor's cancelled future.
            group = [j for j in group if not j.future.cancelled()]
            if not group:
                continue
            outcomes = [_attempt(job.alone)] if job.alone is not None else self._run_rows(group)
            _hand_back(group, outcomes)

    def _run_rows(self, jobs: list[_Job[Any]]) -> list[_Outcome]:
        try:
            # Leaving the block without the commit rolls back (the pool's reset on return).
            with self._rows_engine.connect() as connection:
                connection.exec_driver_sql(sqlite_begin(self._rows_engine.get_execution_options()))
                if len(jobs) == 1:
                    outcomes = [_attempt(partial(_rows_work(jobs[0]), connection))]
                else:
                    # A job whose caller gave up while the group ran (see _run) is skipped.
                    # Savepoints straight on the driver: SQLAlchemy need not know of them,
                    # and its statement machinery would cost more than the savepoint.
                    driver = connection.connection.driver_connection
                    assert driver is not None
                    outcomes = []
                    for job in jobs:
                        if job.future.cancelled():
                            outcomes.append(_Outcome(None, None))
                            continue
                        driver.execute("SAVEPOINT job")
                        outcome = _attempt(partial(_rows_work(job), connection))
                        if outcome.error is not None:
                            driver.execute("ROLLBACK TO job")
                        driver.execute("RELEASE job")
                        outcomes.append(outcome)
                if any(o.error is None for o in outcomes):
                    _commit(connection)
                return outcomes
        except Exception as exc:  # the transaction itself failed: none of it stays
            return [_Outcome(None, exc)] * len(jobs)


def _commit(connection: sa.Connection) -> None:
    """Commits a transaction begun with an explicit BEGIN. A COMMIT that fails (a deferred
    constraint, an I/O error) leaves SQLite's transaction open, while SQLAlchemy counts it
    as ended and would hand the connection back to the pool without a rollback."""
    try:
        connection.commit()
    except BaseException:
        driver = connection.connection.driver_connection
        if driver is not None and driver.in_transaction:
            driver.rollback()
        raise


# Write jobs queued together that commit together, at most (see WriterThread).
MAX_GROUP_COMMIT = 16


@dataclass(frozen=True, slots=True)
class _Job(Generic[T]):
    alone: Callable[[], T] | None
    rows: Callable[[sa.Connection], T] | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]


@dataclass(frozen=True, slots=True)
class _Outcome:
    result: Any
    error: BaseException | None


def _rows_work(job: _Job[T]) -> Callable[[sa.Connection], T]:
    assert job.rows is not None
    return job.rows


def _attempt(work: Callable[[], Any]) -> _Outcome:
    try:
        return _Outcome(work(), None)
    except BaseException as exc:  # handed to the caller, whatever it is
        return _Outcome(None, exc)


def _hand_back(jobs: list[_Job[Any]], outcomes: list[_Outcome]) -> None:
    """One wake-up of each caller's loop for the whole group."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], _Outcome]]] = {}
    for job, outcome in zip(jobs, outcomes, strict=True):
        by_loop.setdefault(job.loop, []).append((job.future, outcome))
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the caller's loop has closed
            loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future[Any], _Outcome]]) -> None:
    for future, outcome in settled:
        if future.cancelled():
            continue
        if outcome.error is not None:
            future.set_exception(outcome.error)
        else:
            future.set_result(outcome.result)


class Database:
    def __init__(self, url: str) -> None:
        self.engine = create_database_engine(url)
        self.backend = self.engine.dialect.name
        self._write_engine = (
            self.engine.execution_options(sqlite_begin="IMMEDIATE")
            if self.backend == "sqlite"
            else self.engine
        )
        # Core work (read_rows, write_rows) on SQLite: its own pool, without the BEGIN
        # event (its transactions begin in _run_connection).
        self._rows_engine = (
            create_database_engine(url, sqlite_begin_event=False)
            if self.backend == "sqlite"
            else self.engine
        )
        self._write_rows_engine = (
            self._rows_engine.execution_options(sqlite_begin="IMMEDIATE")
            if self.backend == "sqlite"
            else self.engine
        )
        self._executor = ThreadPoolExecutor(DB_THREADS, thread_name_prefix="registry-db")
        # SQLite: the single writer (see the module docstring).
        self._writer: WriterThread | ThreadPoolExecutor = (
            WriterThread("registry-db-writer", self._write_rows_engine)
            if self.backend == "sqlite"
            else self._executor
        )

    def upgrade_to_head(self) -> None:
        """Blocking; migrations take the write lock (SQLite) or an advisory lock
        (PostgreSQL, see migrations/env.py), so replicas starting together queue up."""
        with self._write_engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")

    async def read(self, work: Callable[[Session], T]) -> T:
        return await self._run(self.engine, self._executor, work)

    async def write(self, work: Callable[[Session], T]) -> T:
        return await self._run(self._write_engine, self._writer, work)

    async def read_rows(self, work: Callable[[sa.Connection], T]) -> T:
        """`read` for work written as Core statements: no ORM session, identity map or
        unit of work around them, which the hot paths (a chat's calls) cannot afford."""
        return await self._run_connection(self._rows_engine, self._executor, work)

    async def write_rows(self, work: Callable[[sa.Connection], T]) -> T:
        """`write` for work written as Core statements (see `read_rows`). On SQLite it may
        share its transaction with other writes (WriterThread's group commit), each undone
        alone if it raises: `work` must not commit, roll back or use savepoints itself."""
        if isinstance(self._writer, WriterThread):
            return await self._unavailable_on_failure(self._writer.submit_rows(work))
        return await self._run_connection(self._write_rows_engine, self._writer, work)

    async def _run(
        self, engine: sa.Engine, executor: WriterThread | Executor, work: Callable[[Session], T]
    ) -> T:
        def in_transaction() -> T:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                return work(session)

        return await self._in_thread(executor, in_transaction)

    async def _run_connection(
        self,
        engine: sa.Engine,
        executor: WriterThread | Executor,
        work: Callable[[sa.Connection], T],
    ) -> T:
        begin = sqlite_begin(engine.get_execution_options()) if self.backend == "sqlite" else ""

        def in_transaction() -> T:
            if not begin:
                with engine.begin() as connection:
                    return work(connection)
            # Leaving the block without the commit rolls back (the pool's reset on return).
            with engine.connect() as connection:
                connection.exec_driver_sql(begin)
                result = work(connection)
                _commit(connection)
                return result

        return await self._in_thread(executor, in_transaction)

    async def _in_thread(
        self, executor: WriterThread | Executor, in_transaction: Callable[[], T]
    ) -> T:
        if isinstance(executor, WriterThread):
            return await self._unavailable_on_failure(executor.submit(in_transaction))
        return await self._unavailable_on_failure(
            asyncio.get_running_loop().run_in_executor(executor, in_transaction)
        )

    async def _unavailable_on_failure(self, done: Awaitable[T]) -> T:
        try:
            return await done
        except sa.exc.OperationalError as exc:
            log.exception("database operation failed")
            raise Unavailable("database unavailable, try again") from exc

    def close(self) -> None:
        if self._writer is not self._executor:
            self._writer.shutdown()
        self._executor.shutdown(wait=True)
        self.engine.dispose()
        self._rows_engine.dispose()
