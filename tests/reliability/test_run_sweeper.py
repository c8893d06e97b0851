"""The registry's run liveness, in process with an injected clock (no sleeps): the sweeper
ends each unfinished status past its deadline with a clear last_error and tells the streams,
heartbeats keep runs alive, a new leader grants a window, only the lease holder sweeps, and
cancel ends a run no runner holds. On SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from cozeplus.ids import IdGenerator
from cozeplus.vocabulary import ChatStatus
from services.registry.conversations import (
    ChatError,
    ChatRunView,
    ConversationService,
    NewMessage,
    PendingToolCall,
    Usage,
)
from services.registry.database import Database
from services.registry.errors import FailedPrecondition, InvalidArgument, NotFound
from services.registry.run_liveness import (
    SWEEPER_LEASE,
    DatabaseLease,
    RunDeadlines,
    RunLivenessService,
    RunSweeper,
)
from services.registry.tables import BotRecord
from tests.registry.conftest import POSTGRES_URL, fresh_postgres_database

DEADLINES = RunDeadlines(created_s=60, in_progress_s=30, requires_action_s=600)
OWNER = 7


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingNotifier:
    def __init__(self) -> None:
        self.ended: list[ChatRunView] = []

    async def run_ended(self, run: ChatRunView) -> None:
        self.ended.append(run)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "postgresql":
        with fresh_postgres_database(POSTGRES_URL) as url:
            db = Database(url)
            db.upgrade_to_head()
            yield db
            db.close()
    else:
        db = Database(f"sqlite:///{tmp_path / 'registry.db'}")
        db.upgrade_to_head()
        yield db
        db.close()


class World:
    def __init__(self, database: Database) -> None:
        self.db = database
        self.ids = IdGenerator(1)
        self.clock = FakeClock()
        self.notifier = RecordingNotifier()
        self.conversations = ConversationService(database, self.ids, run_silence_s=30)
        self.liveness = RunLivenessService(database, self.notifier, clock=self.clock)
        self.bot_id = self.ids.next_id()

    def sweeper(self, holder: str = "replica-a") -> RunSweeper:
        lease = DatabaseLease(self.db, SWEEPER_LEASE, holder, ttl_s=15)
        return RunSweeper(self.db, self.notifier, lease, DEADLINES, clock=self.clock)

    async def add_bot(self) -> None:
        def work(session: sa.orm.Session) -> None:
            now = int(time.time())
            session.add(
                BotRecord(
                    id=self.bot_id,
                    owner_id=OWNER,
                    space_id=OWNER,
                    name="b",
                    description="",
                    icon_url="",
                    config={},
                    created_at=now,
                    updated_at=now,
                )
            )

        await self.db.write(work)

    async def chat(self, auto_save_history: bool = True) -> ChatRunView:
        created = await self.conversations.create_chat(
            owner_id=OWNER,
            user_id="u",
            chat_id=0,
            conversation_id=0,
            bot_id=self.bot_id,
            bot_version=0,
            model_id="echo",
            messages=[NewMessage(role="user", content="hi")],
            meta_data_json="",
            auto_save_history=auto_save_history,
        )
        return created.run

    async def started(self, auto_save_history: bool = True) -> ChatRunView:
        run = await self.chat(auto_save_history)
        await self.conversations.start_run(owner_id=OWNER, chat_id=run.id, history_rounds=0)
        return run

    async def status(self, chat_id: int) -> ChatRunView:
        return await self.conversations.get_chat(owner_id=OWNER, chat_id=chat_id, conversation_id=0)

    async def progress_at(self, chat_id: int) -> int:
        return int(await self.column(chat_id, "progress_at"))

    async def column(self, chat_id: int, name: str) -> object:
        def work(session: sa.orm.Session) -> object:
            return session.execute(
                sa.text(f"SELECT {name} FROM chat_runs WHERE id = :id"), {"id": chat_id}
            ).scalar_one()

        return await self.db.read(work)

    async def set_columns(self, chat_id: int, **values: object) -> None:
        def work(session: sa.orm.Session) -> None:
            session.execute(
                sa.text(
                    "UPDATE chat_runs SET "
                    + ", ".join(f"{k} = :{k}" for k in values)
                    + " WHERE id = :id"
                ),
                {**values, "id": chat_id},
            )

        await self.db.write(work)


@pytest.fixture
async def world(database: Database) -> World:
    w = World(database)
    await w.add_bot()
    return w


async def test_created_run_ends_failed_at_its_deadline_and_streams_are_told(world: World) -> None:
    sweeper = world.sweeper()
    run = await world.chat()
    assert await sweeper.sweep() == []
    world.clock.advance(59)
    assert await sweeper.sweep() == []
    assert (await world.status(run.id)).status == ChatStatus.CREATED
    world.clock.advance(2)
    (ended,) = await sweeper.sweep()
    assert ended.id == run.id
    stored = await world.status(run.id)
    assert stored.status == ChatStatus.FAILED
    assert stored.failed_at > 0
    assert stored.last_error.code == 503
    assert "no runner started this chat within 60s" in stored.last_error.msg
    assert [r.id for r in world.notifier.ended] == [run.id]
    # Ended once: the next sweep finds nothing.
    world.clock.advance(60)
    assert await sweeper.sweep() == []


async def test_heartbeats_keep_a_run_alive_and_silence_ends_it(world: World) -> None:
    sweeper = world.sweeper()
    await sweeper.sweep()  # leading from now
    run = await world.started()
    for _ in range(4):
        world.clock.advance(20)
        assert await world.liveness.heartbeat([run.id]) == {run.id: ChatStatus.IN_PROGRESS}
        assert await sweeper.sweep() == []
    world.clock.advance(31)
    (ended,) = await sweeper.sweep()
    assert ended.status == ChatStatus.FAILED
    assert ended.last_error.code == 500
    assert ended.last_error.msg.startswith("run lost: no progress from its runner for 30s")
    # The runner, should it come back, learns the run ended and cannot finish it.
    assert await world.liveness.heartbeat([run.id]) == {run.id: ChatStatus.FAILED}
    with pytest.raises(FailedPrecondition):
        await world.conversations.finish_run(
            owner_id=OWNER,
            chat_id=run.id,
            status="completed",
            answer="late",
            reasoning_content="",
            answer_message_id=0,
            usage=Usage(),
            last_error=ChatError(),
            first_token_ms=0,
            duration_ms=0,
        )


async def test_a_new_leader_grants_runs_one_window_from_its_takeover(world: World) -> None:
    run = await world.started()
    # The registry was away for long: the run's progress is far behind.
    world.clock.advance(300)
    sweeper = world.sweeper()
    assert await sweeper.sweep() == []
    assert sweeper.leading
    world.clock.advance(29)
    assert await sweeper.sweep() == []
    # Its runner's next heartbeat lands: alive.
    assert await world.liveness.heartbeat([run.id]) == {run.id: ChatStatus.IN_PROGRESS}
    world.clock.advance(29)
    assert await sweeper.sweep() == []
    world.clock.advance(2)
    assert [r.id for r in await sweeper.sweep()] == [run.id]


async def test_requires_action_expires_after_its_own_deadline(world: World) -> None:
    sweeper = world.sweeper()
    run = await world.started()
    await world.set_columns(
        run.id, status=ChatStatus.REQUIRES_ACTION.value, progress_at=int(world.clock.now)
    )
    world.clock.advance(599)
    assert await sweeper.sweep() == []
    world.clock.advance(2)
    (ended,) = await sweeper.sweep()
    assert ended.status == ChatStatus.FAILED
    assert ended.last_error.code == 408
    assert "no tool outputs were submitted within 600s" in ended.last_error.msg


async def test_a_paused_run_fails_at_its_own_paused_until(world: World) -> None:
    """The run sweeper is the one mechanism for requires_action deadlines: the run's own
    paused_until (TOOL_OUTPUTS_TIMEOUT_S when it paused, 120 s here), not a global limit."""
    conversations = ConversationService(world.db, world.ids, tool_outputs_timeout_s=120)
    sweeper = world.sweeper()
    run = await world.started(auto_save_history=False)
    paused = await conversations.pause_run(
        owner_id=OWNER,
        chat_id=run.id,
        tool_calls=[PendingToolCall(id="c1", name="f", arguments="{}")],
        usage=Usage(),
        custom_variables_json="",
        first_token_ms=0,
        duration_ms=0,
        unsaved_input_json='[{"role": "user", "content": "hi"}]',
        answer_so_far="Let me look. ",
    )
    assert paused.status == ChatStatus.REQUIRES_ACTION
    assert await world.column(run.id, "unsaved_input") != "", "kept while it is paused"
    world.clock.now = paused.paused_until - 1
    assert await sweeper.sweep() == []
    world.clock.now = paused.paused_until
    (ended,) = await sweeper.sweep()
    assert ended.status == ChatStatus.FAILED
    assert ended.last_error.code == 408
    assert ended.last_error.msg == "no tool outputs were submitted within 120s"
    assert ended.pending_tool_calls == ()
    assert await world.column(run.id, "unsaved_input") == "", "emptied when it expires"
    assert await world.column(run.id, "paused_answer") == ""
    assert [r.id for r in world.notifier.ended] == [run.id]


async def test_only_the_lease_holder_sweeps_and_another_takes_over(world: World) -> None:
    first, second = world.sweeper("replica-a"), world.sweeper("replica-b")
    run = await world.chat()
    ended: list[ChatRunView] = []
    # The leader renews well within the lease's TTL; the other replica never gets it.
    for _ in range(7):
        world.clock.advance(10)
        ended += await first.sweep()
        assert await second.sweep() == []
        assert first.leading and not second.leading
    assert [r.id for r in ended] == [run.id]
    # The leader stops renewing (it died): after the lease's TTL the other one leads.
    other = await world.chat()
    world.clock.advance(16)
    assert await second.sweep() == []  # took over; the fresh run is within its window
    assert second.leading
    world.clock.advance(61)
    assert [r.id for r in await second.sweep()] == [other.id]
    assert await first.sweep() == []
    assert not first.leading
    assert [r.id for r in world.notifier.ended] == [run.id, other.id]


async def test_cancel_ends_a_run_no_runner_holds_at_once(world: World) -> None:
    run = await world.started()
    await world.set_columns(run.id, progress_at=int(time.time()) - 31)
    canceled = await world.conversations.cancel_chat(
        owner_id=OWNER, conversation_id=0, chat_id=run.id
    )
    assert canceled.running is False
    assert canceled.run.status == ChatStatus.CANCELED
    assert (await world.status(run.id)).canceled_at > 0
    # A runner that shows up for it finds it ended.
    assert await world.liveness.heartbeat([run.id]) == {run.id: ChatStatus.CANCELED}
    with pytest.raises(FailedPrecondition):
        await world.conversations.start_run(owner_id=OWNER, chat_id=run.id, history_rounds=0)


async def test_cancel_of_a_held_run_asks_its_runner(world: World) -> None:
    run = await world.started()
    await world.liveness.heartbeat([run.id])
    canceled = await world.conversations.cancel_chat(
        owner_id=OWNER, conversation_id=0, chat_id=run.id
    )
    assert canceled.running is True
    assert (await world.status(run.id)).status == ChatStatus.IN_PROGRESS


async def test_end_run_ends_any_unfinished_run_once(world: World) -> None:
    run = await world.started()
    ended = await world.liveness.end_run(
        owner_id=OWNER, chat_id=run.id, status="canceled", code=0, msg=""
    )
    assert ended.status == ChatStatus.CANCELED
    assert [r.id for r in world.notifier.ended] == [run.id]
    with pytest.raises(FailedPrecondition, match="already canceled"):
        await world.liveness.end_run(
            owner_id=OWNER, chat_id=run.id, status="failed", code=500, msg="x"
        )
    queued = await world.chat()
    failed = await world.liveness.end_run(
        owner_id=OWNER, chat_id=queued.id, status="failed", code=500, msg="gave up"
    )
    assert (failed.status, failed.last_error.code, failed.last_error.msg) == (
        "failed",
        500,
        "gave up",
    )


async def test_bad_liveness_calls_are_refused_and_change_nothing(world: World) -> None:
    run = await world.started()
    with pytest.raises(InvalidArgument):
        await world.liveness.heartbeat([run.id, -1])
    with pytest.raises(InvalidArgument):
        await world.liveness.end_run(
            owner_id=OWNER, chat_id=run.id, status="completed", code=0, msg=""
        )
    assert await world.liveness.heartbeat([run.id, 12345]) == {
        run.id: ChatStatus.IN_PROGRESS,
        12345: "",
    }
    # Another account's chat is not found, and stays as it was.
    with pytest.raises(NotFound):
        await world.liveness.end_run(
            owner_id=OWNER + 1, chat_id=run.id, status="canceled", code=0, msg=""
        )
    assert (await world.status(run.id)).status == ChatStatus.IN_PROGRESS
