"""Run liveness: the registry makes sure no chat run stays unfinished forever.

Every run carries `progress_at`, its last sign of life: each status change sets it, and so
does each runner heartbeat (`heartbeat`). The run sweeper ends, as failed with a clear
`last_error`, every run whose progress stops past its deadline:

- created: no runner started it within `created_s` (its edge died before queueing it, or
  every runner is down; the edge's own queue watchdog normally fails it sooner);
- in_progress: its runner sent no heartbeat for `in_progress_s` (the runner died and no
  other runner was handed the chat, or its redeliveries ran out);
- requires_action: nobody submitted tool outputs by the run's own `paused_until` (set when
  it paused, from TOOL_OUTPUTS_TIMEOUT_S). The one mechanism for that deadline.

Then it tells any open stream: the terminal chat event goes to the chat's event subject, and
the edge ends the stream with it (adding `error` for a failed chat), like a runner's.

Several registry replicas may run: one of them leads, by a lease row in the database (see
`DatabaseLease`). Leadership only saves work; safety does not rest on it, since every end is
a conditional UPDATE on the run's status and progress, so two sweepers (a lease that expired
under a slow leader) cannot both end a run, nor end one that just showed progress.

A freshly leading sweeper (a registry restart, a lost lease, a database outage) grants every
created and in_progress run one more full window, measured from when it took over: runners
whose heartbeats failed while the registry was away must get the chance to send the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Session, col, select

from cozeplus.vocabulary import ChatStatus
from services.registry.conversations import PAUSE_KEPT_EMPTIED, ChatRunView, run_view
from services.registry.database import Database
from services.registry.errors import FailedPrecondition, InvalidArgument, NotFound
from services.registry.tables import ChatRunRecord, ConversationRecord, LeaseRecord

log = logging.getLogger(__name__)

# Unix seconds, float; injected so tests move time without sleeping.
Clock = Callable[[], float]

SWEEPER_LEASE = "run-sweeper"
# Runs one sweep ends at most; the next sweep takes the rest.
SWEEP_BATCH = 500

LOST_CREATED_CODE = 503
LOST_IN_PROGRESS_CODE = 500
EXPIRED_ACTION_CODE = 408
END_STATUSES = (ChatStatus.FAILED, ChatStatus.CANCELED)
UNFINISHED = (ChatStatus.CREATED, ChatStatus.IN_PROGRESS, ChatStatus.REQUIRES_ACTION)
ENDED_AT_COLUMN = {ChatStatus.FAILED: "failed_at", ChatStatus.CANCELED: "canceled_at"}


@dataclass(frozen=True, slots=True)
class RunDeadlines:
    """How long a run may go without progress in each unfinished status (seconds).

    A paused run's deadline is its own `paused_until`; `requires_action_s` only serves one
    paused without it (none is, since the agent loop's migration) and names the wait."""

    created_s: float = 60.0
    in_progress_s: float = 30.0
    requires_action_s: float = 600.0

    def limit(self, status: str) -> float:
        if status == ChatStatus.CREATED:
            return self.created_s
        if status == ChatStatus.IN_PROGRESS:
            return self.in_progress_s
        return self.requires_action_s

    def paused_error(self, waited_s: float) -> tuple[int, str]:
        return (
            EXPIRED_ACTION_CODE,
            f"no tool outputs were submitted within {waited_s:.0f}s",
        )

    def error(self, status: str) -> tuple[int, str]:
        """The last_error a run ended for silence in `status` gets."""
        if status == ChatStatus.CREATED:
            return (
                LOST_CREATED_CODE,
                f"no runner started this chat within {self.created_s:.0f}s; retry later",
            )
        if status == ChatStatus.IN_PROGRESS:
            return (
                LOST_IN_PROGRESS_CODE,
                f"run lost: no progress from its runner for {self.in_progress_s:.0f}s; "
                "please retry",
            )
        return (
            EXPIRED_ACTION_CODE,
            f"no tool outputs were submitted within {self.requires_action_s:.0f}s",
        )


class RunEndNotifier(Protocol):
    """Tells the open streams of a run that it ended (the NATS one: registry/run_events.py)."""

    async def run_ended(self, run: ChatRunView) -> None: ...


# ------------------------------------------------------------------- heartbeats, EndRun


class RunLivenessService:
    def __init__(
        self, database: Database, notifier: RunEndNotifier, clock: Clock = time.time
    ) -> None:
        self._db = database
        self._notifier = notifier
        self._clock = clock

    async def heartbeat(self, chat_ids: Sequence[int]) -> dict[int, str]:
        """Marks the named in_progress runs alive; the status of every named run ("" for
        one that does not exist), so a runner stops those that ended elsewhere."""
        ids = sorted(set(chat_ids))
        if any(chat_id <= 0 for chat_id in ids):
            raise InvalidArgument("chat_ids must be positive")
        if len(ids) > 10_000:
            raise InvalidArgument("at most 10000 chat_ids per heartbeat")
        if not ids:
            return {}
        now = int(self._clock())

        def work(session: Session) -> dict[int, str]:
            session.execute(
                sa.update(ChatRunRecord)
                .where(
                    col(ChatRunRecord.id).in_(ids),
                    col(ChatRunRecord.status) == ChatStatus.IN_PROGRESS,
                )
                .values(progress_at=now)
                .execution_options(synchronize_session=False)
            )
            rows = session.execute(
                sa.select(col(ChatRunRecord.id), col(ChatRunRecord.status)).where(
                    col(ChatRunRecord.id).in_(ids)
                )
            )
            found = {int(chat_id): str(status) for chat_id, status in rows}
            return {chat_id: found.get(chat_id, "") for chat_id in ids}

        return await self._db.write(work)

    async def end_run(
        self, *, owner_id: int, chat_id: int, status: str, code: int, msg: str
    ) -> ChatRunView:
        """Ends an unfinished run at once, whoever holds it, and tells its streams."""
        if owner_id <= 0 or chat_id <= 0:
            raise InvalidArgument("owner_id and chat_id are required")
        if status not in END_STATUSES:
            raise InvalidArgument("status must be failed or canceled")
        if status == ChatStatus.CANCELED:
            code, msg = 0, ""
        now = int(self._clock())

        def work(session: Session) -> ChatRunView:
            run = session.exec(
                select(ChatRunRecord)
                .join(
                    ConversationRecord,
                    col(ConversationRecord.id) == col(ChatRunRecord.conversation_id),
                )
                .where(
                    ChatRunRecord.id == chat_id,
                    ChatRunRecord.owner_id == owner_id,
                    ConversationRecord.deleted_at == 0,
                )
            ).one_or_none()
            if run is None:
                raise NotFound(f"chat {chat_id} not found")
            if run.status not in UNFINISHED:
                raise FailedPrecondition(f"chat already {run.status}")
            ended = _end(session, run.id, run.status, None, status, code, msg, now)
            if ended is None:
                session.refresh(run)
                raise FailedPrecondition(f"chat already {run.status}")
            return ended

        ended = await self._db.write(work)
        await _notify(self._notifier, ended)
        return ended


# --------------------------------------------------------------------------- sweeper


class DatabaseLease:
    """A named lease in `registry_leases`, renewed by its holder before it expires.

    Chosen over a NATS KV lease because the sweeper's work is in the database: a replica
    that can reach the database can sweep, whatever NATS is doing (a NATS failover must not
    pause sweeping), and it works alike on SQLite and PostgreSQL with no extra service.
    """

    def __init__(self, database: Database, name: str, holder: str, ttl_s: float) -> None:
        self._db = database
        self.name = name
        self.holder = holder
        self.ttl_s = ttl_s

    async def hold(self, now: float) -> bool:
        """Takes or renews the lease; False while another holder's lease is current."""
        now_ms = int(now * 1000)
        expires = now_ms + int(self.ttl_s * 1000)

        def work(session: Session) -> bool:
            lease = session.exec(
                select(LeaseRecord).where(LeaseRecord.name == self.name).with_for_update()
            ).one_or_none()
            if lease is None:
                session.add(LeaseRecord(name=self.name, holder=self.holder, expires_at_ms=expires))
                return True
            if lease.holder != self.holder and lease.expires_at_ms > now_ms:
                return False
            lease.holder = self.holder
            lease.expires_at_ms = expires
            return True

        try:
            return await self._db.write(work)
        except sa.exc.IntegrityError:
            # Another replica inserted the first lease row at the same moment.
            return False

    async def release(self) -> None:
        def work(session: Session) -> None:
            session.execute(
                sa.delete(LeaseRecord).where(
                    col(LeaseRecord.name) == self.name, col(LeaseRecord.holder) == self.holder
                )
            )

        await self._db.write(work)


class RunSweeper:
    def __init__(
        self,
        database: Database,
        notifier: RunEndNotifier,
        lease: DatabaseLease,
        deadlines: RunDeadlines,
        *,
        interval_s: float = 5.0,
        clock: Clock = time.time,
    ) -> None:
        self._db = database
        self._notifier = notifier
        self._lease = lease
        self.deadlines = deadlines
        self.interval_s = interval_s
        self._clock = clock
        # Since when this replica has been watching as leader without interruption; None
        # while it is not (see the module docstring on the grace this gives).
        self._watching_since: float | None = None
        self._stop = asyncio.Event()

    @property
    def leading(self) -> bool:
        return self._watching_since is not None

    async def run(self) -> None:
        """Sweeps every interval until `stop`, then hands the lease back so another replica
        takes over without waiting for it to expire."""
        while not self._stop.is_set():
            await self.sweep()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval_s)
        if self._watching_since is not None:
            self._watching_since = None
            with contextlib.suppress(Exception):
                await self._lease.release()

    def stop(self) -> None:
        self._stop.set()

    async def sweep(self) -> list[ChatRunView]:
        """One round: hold the lease, end what is overdue, tell the streams. Returns the
        runs it ended. Never raises: a failure is logged and costs the grace above."""
        now = self._clock()
        try:
            leading = await self._lease.hold(now)
        except Exception as exc:
            self._lost("could not renew the sweeper lease", exc)
            return []
        if not leading:
            if self._watching_since is not None:
                log.info("run sweeper: another registry replica leads now")
            self._watching_since = None
            return []
        if self._watching_since is None:
            log.info("run sweeper: leading; unfinished runs get one more window from now")
            self._watching_since = now
        try:
            ended = await self._db.write(lambda session: self._end_overdue(session, now))
        except Exception as exc:
            self._lost("sweeping overdue runs failed", exc)
            return []
        for run in ended:
            log.warning(
                "chat %d: ended by the run sweeper as %s: %s",
                run.id,
                run.status,
                run.last_error.msg,
            )
            await _notify(self._notifier, run)
        return ended

    def _lost(self, what: str, exc: Exception) -> None:
        log.warning("run sweeper: %s (%r); will grant a new window when back", what, exc)
        self._watching_since = None

    def _end_overdue(self, session: Session, now: float) -> list[ChatRunView]:
        assert self._watching_since is not None
        deadlines = self.deadlines
        # Cheap bounds first (both indexed): nothing younger than the shortest silence limit
        # can be overdue, and a paused run only once its own deadline has passed.
        oldest_ok = now - min(deadlines.created_s, deadlines.in_progress_s)
        columns = (
            col(ChatRunRecord.id),
            col(ChatRunRecord.status),
            col(ChatRunRecord.progress_at),
            col(ChatRunRecord.paused_until),
        )
        silent = session.execute(
            sa.select(*columns)
            .where(
                col(ChatRunRecord.status).in_((ChatStatus.CREATED, ChatStatus.IN_PROGRESS)),
                col(ChatRunRecord.progress_at) <= oldest_ok,
            )
            .order_by(col(ChatRunRecord.progress_at))
            .limit(SWEEP_BATCH)
        ).all()
        paused = session.execute(
            sa.select(*columns)
            .where(
                col(ChatRunRecord.status) == ChatStatus.REQUIRES_ACTION,
                sa.or_(
                    sa.and_(
                        col(ChatRunRecord.paused_until) > 0,
                        col(ChatRunRecord.paused_until) <= now,
                    ),
                    sa.and_(
                        col(ChatRunRecord.paused_until) == 0,
                        col(ChatRunRecord.progress_at) <= now - deadlines.requires_action_s,
                    ),
                ),
            )
            .limit(SWEEP_BATCH)
        ).all()
        ended: list[ChatRunView] = []
        for chat_id, status, progress_at, paused_until in [*silent, *paused]:
            if status == ChatStatus.REQUIRES_ACTION:
                # Absolute: a paused run waits on its client, not on a runner, so a new
                # leader grants it no window. Pausing set progress_at, so the wait is:
                waited = paused_until - progress_at if paused_until else deadlines.limit(status)
                code, msg = deadlines.paused_error(waited)
            else:
                since = max(float(progress_at), self._watching_since)
                if now < since + deadlines.limit(status):
                    continue
                code, msg = deadlines.error(status)
            run = _end(
                session, chat_id, status, progress_at, ChatStatus.FAILED, code, msg, int(now)
            )
            if run is not None:
                ended.append(run)
        return ended


def _end(
    session: Session,
    chat_id: int,
    expected_status: str,
    expected_progress_at: int | None,
    status: str,
    code: int,
    msg: str,
    now: int,
) -> ChatRunView | None:
    """One conditional UPDATE: the run ends only if it is still as it was read (status and,
    when given, progress), so a heartbeat or a runner's own transition in between wins."""
    conditions = [col(ChatRunRecord.id) == chat_id, col(ChatRunRecord.status) == expected_status]
    if expected_progress_at is not None:
        conditions.append(col(ChatRunRecord.progress_at) == expected_progress_at)
    # An ended run waits for no tool outputs any more.
    paused: dict[str, Any] = (
        {"pending_tool_calls": []} if expected_status == ChatStatus.REQUIRES_ACTION else {}
    )
    result = session.execute(
        sa.update(ChatRunRecord)
        .where(*conditions)
        .values(
            status=status,
            last_error_code=code,
            last_error_msg=msg,
            progress_at=now,
            **PAUSE_KEPT_EMPTIED,
            **paused,
            **{ENDED_AT_COLUMN[ChatStatus(status)]: now},
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    record = session.get(ChatRunRecord, chat_id)
    assert record is not None
    session.refresh(record)
    return run_view(record)


async def _notify(notifier: RunEndNotifier, run: ChatRunView) -> None:
    # Best effort: a stream that misses it still ends by the edge's own watchdogs.
    try:
        await notifier.run_ended(run)
    except Exception:
        log.exception("chat %d: could not tell its streams that it ended", run.id)
