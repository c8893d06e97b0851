"""Conversations, their messages, and chat runs.

Tenancy: every call names the calling account (`owner_id`); another account's
conversation, message or chat is not found, as is one of a soft-deleted conversation.
Where a call also names the end user (`user_id`), a conversation that belongs to a
different end user is not found either; a conversation created without an end user
("") is open to all of the owner's end users.

A chat run moves created -> in_progress -> completed | failed | canceled, or from
created straight to failed | canceled while still queued. A run that calls a client-side
function pauses: in_progress -> requires_action; submitted tool outputs move it back to
created, to be queued and resumed by any runner; unanswered, it fails at `paused_until`.
Each transition is one conditional UPDATE on the current status, so an edge cancelling a
queued chat and a runner starting it (or two runners given the same chat) cannot both win,
on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import orjson
import sqlalchemy as sa
from sqlmodel import Session, col, select

from cozeplus.ids import IdGenerator
from cozeplus.message_content import CONTENT_TYPES, ContentError, parse_content
from cozeplus.vocabulary import ChatStatus, ContentType, MessageRole, MessageType
from services.registry.bots import MAX_HISTORY_ROUNDS
from services.registry.database import Database
from services.registry.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.registry.tables import (
    BotRecord,
    ChatRunRecord,
    ConversationRecord,
    MessageRecord,
    metadata,
)

ROLES = tuple(MessageRole)
DEFAULT_TYPE_BY_ROLE = {
    MessageRole.USER: MessageType.QUESTION,
    MessageRole.ASSISTANT: MessageType.ANSWER,
}
# Any lower-case type is stored as given; only the conversation and its tool traces are
# history (wire contract section 7: the model sees earlier tool calls in later chats).
TYPE_PATTERN = re.compile(r"[a-z][a-z_]{0,31}", re.ASCII)
HISTORY_TYPES = (
    MessageType.QUESTION,
    MessageType.ANSWER,
    MessageType.FUNCTION_CALL,
    MessageType.TOOL_RESPONSE,
)
MAX_CONTENT_CHARS = 100_000
MAX_META_PAIRS = 16
MAX_META_KEY_CHARS = 64
MAX_META_VALUE_CHARS = 512
MAX_NAME_CHARS = 100
MAX_USER_ID_CHARS = 255
MAX_MODEL_ID_CHARS = 128
# The input of one chat.
MAX_CHAT_MESSAGES = 100
# CreateConversation also seeds whole histories (imports, the end-to-end tests' 1,000
# message conversation), so it takes more than a chat's input.
MAX_CONVERSATION_MESSAGES = 1000
MAX_LIMIT = 50
MAX_PAGE_SIZE = 50
# A backstop under the round count: a window of a few rounds can still hold any number
# of assistant messages, and a prompt must stay bounded. The newest ones are kept.
MAX_HISTORY_MESSAGES = 1000
# Default of the registry's COZEPLUS_REGISTRY_RUN_SILENCE_S (see run_liveness.py).
RUN_SILENCE_S = 30.0

CREATED = ChatStatus.CREATED
IN_PROGRESS = ChatStatus.IN_PROGRESS
REQUIRES_ACTION = ChatStatus.REQUIRES_ACTION
# What a run may add to its chat while it runs.
# An answer among them: the text a model said before a round of calls (the run's answer
# goes on as a newer message after the round).
RUN_MESSAGE_TYPES = (MessageType.ANSWER, MessageType.FUNCTION_CALL, MessageType.TOOL_RESPONSE)
MAX_RUN_MESSAGES = 64
MAX_PENDING_TOOL_CALLS = 64
MAX_TOOL_CALL_ID_CHARS = 128
# What a paused run keeps for its resumption (its unsaved input, the answer so far), as
# every end of a run writes it: emptied, so an ended run holds no copy of either.
PAUSE_KEPT_EMPTIED: dict[str, str] = {"unsaved_input": "", "paused_answer": ""}
# The answer text a paused run keeps: what a model streams before it calls a tool is short;
# this only bounds a hostile or broken runner's request.
MAX_PAUSED_ANSWER_CHARS = 1_000_000
# The meta_data key of a tool_response message naming the call it answers.
TOOL_CALL_ID_META = "tool_call_id"
ENDED_STATUSES = (ChatStatus.COMPLETED, ChatStatus.FAILED, ChatStatus.CANCELED)
ABORT_STATUSES = (ChatStatus.FAILED, ChatStatus.CANCELED)
# The column each end status stamps with the time it was reached.
ENDED_AT_COLUMN = {
    ChatStatus.COMPLETED: "completed_at",
    ChatStatus.FAILED: "failed_at",
    ChatStatus.CANCELED: "canceled_at",
}


@dataclass(frozen=True)
class NewMessage:
    role: str
    content: str
    type: str = ""
    content_type: str = ""
    meta_data_json: str = ""


@dataclass(frozen=True)
class ChatError:
    code: int = 0
    msg: str = ""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class ConversationView:
    id: int
    owner_id: int
    user_id: str
    bot_id: int
    name: str
    meta_data: dict[str, str]
    created_at: int
    updated_at: int
    last_section_id: int


@dataclass(frozen=True)
class MessageView:
    id: int
    conversation_id: int
    section_id: int
    chat_id: int
    bot_id: int
    role: str
    type: str
    content: str
    content_type: str
    reasoning_content: str
    meta_data: dict[str, str]
    created_at: int
    updated_at: int


@dataclass(frozen=True)
class ChatRunView:
    id: int
    conversation_id: int
    section_id: int
    owner_id: int
    user_id: str
    bot_id: int
    bot_version: int
    status: str
    created_at: int
    started_at: int
    completed_at: int
    failed_at: int
    canceled_at: int
    last_error: ChatError
    usage: Usage
    meta_data: dict[str, str]
    first_token_ms: int
    duration_ms: int
    model_id: str
    auto_save_history: bool
    pending_tool_calls: tuple[PendingToolCall, ...] = ()
    paused_until: int = 0
    custom_variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PendingToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class RunMessage:
    id: int
    role: str
    type: str
    content: str
    content_type: str = ""
    # tool_response: the call it answers, kept in meta_data so later prompts can pair them.
    tool_call_id: str = ""


@dataclass(frozen=True)
class ToolOutput:
    tool_call_id: str
    output: str


@dataclass(frozen=True)
class SectionView:
    id: int
    conversation_id: int


@dataclass(frozen=True)
class ConversationPage:
    conversations: list[ConversationView]
    has_more: bool


@dataclass(frozen=True)
class MessagePage:
    messages: list[MessageView]
    # The first and last ids of `messages` in the order returned; 0 for an empty page.
    first_id: int
    last_id: int
    has_more: bool


@dataclass(frozen=True)
class CreatedChat:
    run: ChatRunView
    # The history window StartRun would give, read in the same transaction.
    history: list[MessageView]


@dataclass(frozen=True)
class StartedRun:
    run: ChatRunView
    history: list[MessageView]
    restarted: bool
    # The chat's own messages so far (input, earlier rounds' tool messages).
    chat_messages: list[MessageView] = field(default_factory=list)
    # Its input when it was not saved and the run paused (PauseRun's unsaved_input_json).
    unsaved_input_json: str = ""
    # The answer text streamed before the run paused (PauseRun's answer_so_far).
    answer_so_far: str = ""


@dataclass(frozen=True)
class CanceledChat:
    run: ChatRunView
    running: bool


@dataclass(frozen=True)
class _CheckedMessage:
    role: str
    type: str
    content: str
    content_type: str
    meta_data: dict[str, str] = field(default_factory=dict)


class ConversationService:
    def __init__(
        self,
        database: Database,
        ids: IdGenerator,
        *,
        tool_outputs_timeout_s: int = 600,
        run_silence_s: float = RUN_SILENCE_S,
    ) -> None:
        self._db = database
        self._ids = ids
        self._tool_outputs_timeout_s = tool_outputs_timeout_s
        # A run in progress whose runner has been silent this long is held by no runner:
        # cancel ends it at once instead of asking a runner that is gone.
        self._run_silence_s = run_silence_s

    # ----------------------------------------------------------- conversations

    async def create_conversation(
        self,
        *,
        owner_id: int,
        user_id: str,
        bot_id: int,
        name: str,
        meta_data_json: str,
        messages: Sequence[NewMessage],
    ) -> ConversationView:
        _require_owner(owner_id)
        _validate_user_id(user_id)
        if bot_id < 0:
            raise InvalidArgument("bot_id must not be negative")
        if len(messages) > MAX_CONVERSATION_MESSAGES:
            raise InvalidArgument(f"messages: at most {MAX_CONVERSATION_MESSAGES} allowed")
        checked = [_check_message(m, f"messages[{i}]") for i, m in enumerate(messages)]
        name = _validate_name(name) if name.strip() else _default_name(checked)
        meta_data = _parse_meta_data(meta_data_json, "meta_data_json")
        conversation_id = self._ids.next_id()
        message_ids = [self._ids.next_id() for _ in checked]

        def work(session: Session) -> ConversationView:
            if bot_id:
                _require_bot(session, owner_id, bot_id)
            now = int(time.time())
            conversation = _new_conversation(
                conversation_id, owner_id, user_id, bot_id, name, meta_data, now
            )
            session.add(conversation)
            session.add_all(
                _message_records(conversation, checked, message_ids, chat_id=0, now=now)
            )
            return _conversation_view(conversation)

        return await self._db.write(work)

    async def get_conversation(
        self, *, owner_id: int, conversation_id: int, user_id: str
    ) -> ConversationView:
        _require_owner(owner_id)
        _require_conversation_id(conversation_id)
        return await self._db.read(
            lambda session: _conversation_view(
                _load_conversation(session, owner_id, conversation_id, user_id)
            )
        )

    async def list_conversations(
        self,
        *,
        owner_id: int,
        bot_id: int,
        user_id: str,
        page_num: int,
        page_size: int,
        sort_order: str,
    ) -> ConversationPage:
        """bot_id 0 lists the conversations with every bot (and without one)."""
        _require_owner(owner_id)
        if bot_id < 0:
            raise InvalidArgument("bot_id must not be negative")
        if page_num < 0:
            raise InvalidArgument("page_num must not be negative")
        if not 0 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        descending = _is_descending(sort_order, "sort_order")
        size = page_size or MAX_PAGE_SIZE
        offset = ((page_num or 1) - 1) * size

        def work(session: Session) -> ConversationPage:
            conditions = [
                ConversationRecord.owner_id == owner_id,
                ConversationRecord.deleted_at == 0,
            ]
            if bot_id:
                _require_bot(session, owner_id, bot_id)
                conditions.append(ConversationRecord.bot_id == bot_id)
            if user_id:
                conditions.append(ConversationRecord.user_id == user_id)
            order = col(ConversationRecord.id)
            records = list(
                session.exec(
                    select(ConversationRecord)
                    .where(*conditions)
                    # Ids are time-ordered: creation order without a tie.
                    .order_by(order.desc() if descending else order.asc())
                    .offset(offset)
                    # One more than the page, to know whether another page follows.
                    .limit(size + 1)
                )
            )
            return ConversationPage(
                [_conversation_view(r) for r in records[:size]], len(records) > size
            )

        return await self._db.read(work)

    async def update_conversation(
        self,
        *,
        owner_id: int,
        conversation_id: int,
        name: str | None,
        meta_data_json: str | None,
    ) -> ConversationView:
        _require_owner(owner_id)
        _require_conversation_id(conversation_id)
        if name is not None:
            name = name.strip()
            if len(name) > MAX_NAME_CHARS:
                raise InvalidArgument(f"name must be at most {MAX_NAME_CHARS} characters")
        meta_data = (
            None if meta_data_json is None else _parse_meta_data(meta_data_json, "meta_data_json")
        )

        def work(session: Session) -> ConversationView:
            record = _load_conversation(session, owner_id, conversation_id, for_update=True)
            changed = False
            if name is not None and name != record.name:
                record.name = name
                changed = True
            if meta_data is not None and meta_data != record.meta_data:
                record.meta_data = meta_data
                changed = True
            if changed:
                record.updated_at = int(time.time())
            return _conversation_view(record)

        return await self._db.write(work)

    async def delete_conversation(
        self, *, owner_id: int, conversation_id: int, user_id: str
    ) -> ConversationView:
        """Soft delete: the conversation, its messages and its chats become not found."""
        _require_owner(owner_id)
        _require_conversation_id(conversation_id)

        def work(session: Session) -> ConversationView:
            record = _load_conversation(
                session, owner_id, conversation_id, user_id, for_update=True
            )
            view = _conversation_view(record)
            record.deleted_at = int(time.time())
            return view

        return await self._db.write(work)

    async def clear_conversation(
        self, *, owner_id: int, conversation_id: int, user_id: str
    ) -> SectionView:
        """Starts a new section. Messages stay listed; history reads only the new section."""
        _require_owner(owner_id)
        _require_conversation_id(conversation_id)
        section_id = self._ids.next_id()

        def work(session: Session) -> SectionView:
            record = _load_conversation(
                session, owner_id, conversation_id, user_id, for_update=True
            )
            record.last_section_id = section_id
            record.updated_at = int(time.time())
            return SectionView(section_id, record.id)

        return await self._db.write(work)

    # ---------------------------------------------------------------- messages

    async def create_message(
        self, *, owner_id: int, conversation_id: int, message: NewMessage
    ) -> MessageView:
        _require_owner(owner_id)
        _require_conversation_id(conversation_id)
        checked = _check_message(message, "message")
        message_id = self._ids.next_id()

        def work(session: Session) -> MessageView:
            # Locked so that a concurrent clear or delete cannot slip in between reading
            # the section and adding to it.
            conversation = _load_conversation(session, owner_id, conversation_id, for_update=True)
            (record,) = _message_records(
                conversation, [checked], [message_id], chat_id=0, now=int(time.time())
            )
            session.add(record)
            return _message_view(record)

        return await self._db.write(work)

    async def get_message(
        self, *, owner_id: int, conversation_id: int, message_id: int
    ) -> MessageView:
        _require_owner(owner_id)
        _require_conversation_id(conversation_id)
        _require_message_id(message_id)

        def work(session: Session) -> MessageView:
            _load_conversation(session, owner_id, conversation_id)
            return _message_view(_load_message(session, conversation_id, message_id))

        return await self._db.read(work)

    async def list_messages(
        self,
        *,
        owner_id: int,
        conversation_id: int,
        order: str,
        before_id: int,
        after_id: int,
        limit: int,
        chat_id: int,
    ) -> MessagePage:
        """One page of a conversation's messages, in every section.

        `before_id` and `after_id` are positions in the list as ordered, the way the
        Coze API defines them: the next page is `after_id = last_id`, the previous one
        `before_id = first_id`, whichever the order. In ascending order that means
        strictly older than `before_id` and newer than `after_id`; in descending order
        (newest first) the reverse. `has_more` says whether more messages lie beyond
        the page in the direction paged: past `last_id`, or before `first_id` when
        only `before_id` is given.
        """
        _require_owner(owner_id)
        _require_conversation_id(conversation_id)
        descending = _is_descending(order, "order")
        if before_id < 0 or after_id < 0 or chat_id < 0:
            raise InvalidArgument("before_id, after_id and chat_id must not be negative")
        if not 0 <= limit <= MAX_LIMIT:
            raise InvalidArgument(f"limit must be between 1 and {MAX_LIMIT}")
        limit = limit or MAX_LIMIT
        message_id = col(MessageRecord.id)
        conditions: list[sa.ColumnElement[bool]] = [
            col(MessageRecord.conversation_id) == conversation_id
        ]
        if chat_id:
            conditions.append(col(MessageRecord.chat_id) == chat_id)
        if after_id:
            conditions.append(message_id < after_id if descending else message_id > after_id)
        if before_id:
            conditions.append(message_id > before_id if descending else message_id < before_id)
        # Paging backwards takes the messages closest to before_id, so it reads in the
        # opposite order and turns the page around afterwards.
        backwards = bool(before_id) and not after_id
        read_descending = descending != backwards

        def work(session: Session) -> MessagePage:
            _load_conversation(session, owner_id, conversation_id)
            records = list(
                session.exec(
                    select(MessageRecord)
                    .where(*conditions)
                    .order_by(message_id.desc() if read_descending else message_id.asc())
                    .limit(limit + 1)
                )
            )
            page = [_message_view(r) for r in records[:limit]]
            if backwards:
                page.reverse()
            return MessagePage(
                page,
                first_id=page[0].id if page else 0,
                last_id=page[-1].id if page else 0,
                has_more=len(records) > limit,
            )

        return await self._db.read(work)

    async def modify_message(
        self,
        *,
        owner_id: int,
        conversation_id: int,
        message_id: int,
        content: str | None,
        content_type: str | None,
        meta_data_json: str | None,
    ) -> MessageView:
        _require_owner(owner_id)
        _require_conversation_id(conversation_id)
        _require_message_id(message_id)
        meta_data = (
            None if meta_data_json is None else _parse_meta_data(meta_data_json, "meta_data_json")
        )

        def work(session: Session) -> MessageView:
            _load_conversation(session, owner_id, conversation_id, for_update=True)
            record = _load_message(session, conversation_id, message_id)
            new_content = record.content if content is None else content
            new_content_type = record.content_type if content_type is None else content_type
            if content is not None or content_type is not None:
                # Checked together: a new content type must fit the stored content
                # and the other way round.
                new_content, new_content_type = _check_content(
                    new_content, new_content_type, record.type, ""
                )
            changes: dict[str, Any] = {
                name: value
                for name, value in (
                    ("content", new_content),
                    ("content_type", new_content_type),
                    ("meta_data", meta_data),
                )
                if value is not None and value != getattr(record, name)
            }
            if changes:
                for name, value in changes.items():
                    setattr(record, name, value)
                record.updated_at = int(time.time())
            return _message_view(record)

        return await self._db.write(work)

    async def delete_message(
        self, *, owner_id: int, conversation_id: int, message_id: int
    ) -> MessageView:
        """A hard delete; returns the message as it was."""
        _require_owner(owner_id)
        _require_conversation_id(conversation_id)
        _require_message_id(message_id)

        def work(session: Session) -> MessageView:
            _load_conversation(session, owner_id, conversation_id, for_update=True)
            record = _load_message(session, conversation_id, message_id)
            view = _message_view(record)
            session.delete(record)
            return view

        return await self._db.write(work)

    # --------------------------------------------------------------- chat runs

    async def create_chat(
        self,
        *,
        owner_id: int,
        user_id: str,
        chat_id: int,
        conversation_id: int,
        bot_id: int,
        bot_version: int,
        model_id: str,
        messages: Sequence[NewMessage],
        meta_data_json: str,
        auto_save_history: bool,
        history_rounds: int = 0,
        new_conversation_id: int = 0,
    ) -> CreatedChat:
        """Records a chat as created; conversation_id 0 starts a new conversation.

        chat_id 0 mints the chat's id, as new_conversation_id 0 mints a new conversation's;
        an edge may pass ids it minted itself (it then queues the chat while this records
        it). The history window (`history_rounds` rounds, as StartRun gives it) comes along,
        so the runner need not wait for StartRun before asking the model.
        """
        _require_owner(owner_id)
        _validate_user_id(user_id)
        if bot_id <= 0:
            raise InvalidArgument("bot_id is required")
        if chat_id < 0 or conversation_id < 0 or new_conversation_id < 0:
            raise InvalidArgument(
                "chat_id, conversation_id and new_conversation_id must not be negative"
            )
        if conversation_id and new_conversation_id:
            raise InvalidArgument("new_conversation_id is for a new conversation only")
        if bot_version < 0:
            raise InvalidArgument("bot_version must not be negative")
        if not 0 <= history_rounds <= MAX_HISTORY_ROUNDS:
            raise InvalidArgument(f"history_rounds must be between 0 and {MAX_HISTORY_ROUNDS}")
        if len(model_id) > MAX_MODEL_ID_CHARS:
            raise InvalidArgument(f"model_id must be at most {MAX_MODEL_ID_CHARS} characters")
        if len(messages) > MAX_CHAT_MESSAGES:
            raise InvalidArgument(f"messages: at most {MAX_CHAT_MESSAGES} allowed")
        checked = [_check_message(m, f"messages[{i}]") for i, m in enumerate(messages)]
        meta_data = _parse_meta_data(meta_data_json, "meta_data_json")
        run_id = chat_id or self._ids.next_id()
        if not conversation_id and not new_conversation_id:
            new_conversation_id = self._ids.next_id()
        message_ids = [self._ids.next_id() for _ in checked] if auto_save_history else []

        def work(connection: sa.Connection) -> CreatedChat:
            bot = connection.execute(_BOT_ALIVE, {"p_bot": bot_id, "p_owner": owner_id})
            if bot.first() is None:
                raise NotFound(f"bot {bot_id} not found")
            now = int(time.time())
            if conversation_id:
                found = connection.execute(
                    _CONVERSATION_FOR_CHAT, {"p_id": conversation_id, "p_owner": owner_id}
                ).first()
                if found is None or (user_id and found.user_id and found.user_id != user_id):
                    raise NotFound(f"conversation {conversation_id} not found")
                chat_conversation_id, section_id = conversation_id, found.last_section_id
            else:
                chat_conversation_id = section_id = new_conversation_id
                row = _conversation_row(
                    new_conversation_id, owner_id, user_id, bot_id, _default_name(checked), {}, now
                )
                try:
                    connection.execute(_INSERT_CONVERSATION, row)
                except sa.exc.IntegrityError:
                    raise AlreadyExists(
                        f"conversation {new_conversation_id} already exists"
                    ) from None
            run = {
                "id": run_id,
                "conversation_id": chat_conversation_id,
                "section_id": section_id,
                "owner_id": owner_id,
                "user_id": user_id,
                "bot_id": bot_id,
                "bot_version": bot_version,
                "model_id": model_id,
                "status": CREATED,
                "created_at": now,
                "started_at": 0,
                "completed_at": 0,
                "failed_at": 0,
                "canceled_at": 0,
                "last_error_code": 0,
                "last_error_msg": "",
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "meta_data": meta_data,
                "first_token_ms": 0,
                "duration_ms": 0,
                "auto_save_history": auto_save_history,
                "pending_tool_calls": [],
                "paused_until": 0,
                "custom_variables": {},
                "progress_at": now,
            }
            try:
                # The primary key is the existence check: no read before the insert.
                connection.execute(_INSERT_RUN, run)
            except sa.exc.IntegrityError:
                raise AlreadyExists(f"chat {run_id} already exists") from None
            if auto_save_history and checked:
                connection.execute(
                    _INSERT_MESSAGE,
                    [
                        _message_row(
                            message_id,
                            chat_conversation_id,
                            section_id,
                            run_id,
                            owner_id,
                            bot_id,
                            message,
                            now,
                        )
                        for message, message_id in zip(checked, message_ids, strict=True)
                    ],
                )
            view = _run_view(SimpleNamespace(**run))
            # A new conversation has none: no need to look.
            history = _history(connection, view, history_rounds) if conversation_id else []
            return CreatedChat(view, history)

        return await self._db.write_rows(work)

    async def start_run(
        self, *, owner_id: int, chat_id: int, history_rounds: int, with_messages: bool = True
    ) -> StartedRun:
        """created -> in_progress, with the history window for the prompt and the chat's own
        messages (unless `with_messages` is false: the runner has them from the queue).

        A run already in progress is returned unchanged with `restarted`: its runner
        was lost and another was given the chat, or this is the retry of a StartRun whose
        reply was lost (so the history comes along: the runner that knows it retried
        runs the chat).
        """
        _require_owner(owner_id)
        _require_chat_id(chat_id)
        if not 0 <= history_rounds <= MAX_HISTORY_ROUNDS:
            raise InvalidArgument(f"history_rounds must be between 0 and {MAX_HISTORY_ROUNDS}")

        def work(connection: sa.Connection) -> StartedRun:
            def started(run: sa.Row[Any], restarted: bool) -> StartedRun:
                return StartedRun(
                    _run_view(run),
                    _history(connection, run, history_rounds) if with_messages else [],
                    restarted,
                    _chat_messages(connection, run) if with_messages else [],
                    run.unsaved_input,
                    run.paused_answer,
                )

            params = {"p_id": chat_id, "p_owner": owner_id, "p_now": int(time.time())}
            # Twice: a run can go back to created (its tool outputs submitted) between an
            # UPDATE that found it in another status and the read after it.
            for _ in range(2):
                updated = connection.execute(_START_RUN, params).first()
                if updated is not None:
                    return started(updated, restarted=False)
                run = _load_run_row(connection, owner_id, chat_id)
                if run.status == IN_PROGRESS:
                    return started(run, restarted=True)
                if run.status != CREATED:
                    break
            raise FailedPrecondition(f"chat already {run.status}")

        return await self._db.write_rows(work)

    async def finish_run(
        self,
        *,
        owner_id: int,
        chat_id: int,
        status: str,
        answer: str,
        reasoning_content: str,
        answer_message_id: int,
        usage: Usage,
        last_error: ChatError,
        first_token_ms: int,
        duration_ms: int,
    ) -> ChatRunView:
        """in_progress -> completed | failed | canceled, storing the answer so far."""
        _require_owner(owner_id)
        _require_chat_id(chat_id)
        if status not in ENDED_STATUSES:
            raise InvalidArgument(f"status must be one of {', '.join(ENDED_STATUSES)}")
        if answer_message_id < 0:
            raise InvalidArgument("answer_message_id must not be negative")
        if min(usage.prompt_tokens, usage.completion_tokens, first_token_ms, duration_ms) < 0:
            raise InvalidArgument("usage, first_token_ms and duration_ms must not be negative")
        message_id = answer_message_id or self._ids.next_id()
        finish = _FINISH_RUN[ChatStatus(status)]

        def work(connection: sa.Connection) -> ChatRunView:
            now = int(time.time())
            run = connection.execute(
                finish,
                {
                    "p_id": chat_id,
                    "p_owner": owner_id,
                    "p_now": now,
                    "p_code": last_error.code,
                    "p_msg": last_error.msg,
                    "p_prompt_tokens": usage.prompt_tokens,
                    "p_completion_tokens": usage.completion_tokens,
                    "p_first_token_ms": first_token_ms,
                    "p_duration_ms": duration_ms,
                },
            ).first()
            if run is None:
                run = _load_run_row(connection, owner_id, chat_id)
                if _finished_alike(connection, run, status, last_error, answer, answer_message_id):
                    # The retry of a FinishRun that landed but whose reply was lost.
                    return _run_view(run)
                if run.status == CREATED:
                    raise FailedPrecondition("chat has not been started")
                raise FailedPrecondition(f"chat already {run.status}")
            if run.auto_save_history and answer:
                try:
                    connection.execute(
                        _INSERT_MESSAGE,
                        {
                            "id": message_id,
                            "conversation_id": run.conversation_id,
                            "section_id": run.section_id,
                            "chat_id": run.id,
                            "owner_id": run.owner_id,
                            "bot_id": run.bot_id,
                            "role": MessageRole.ASSISTANT,
                            "type": MessageType.ANSWER,
                            "content": answer,
                            "content_type": "text",
                            "reasoning_content": reasoning_content,
                            "meta_data": {},
                            "created_at": now,
                            "updated_at": now,
                        },
                    )
                except sa.exc.IntegrityError:
                    raise AlreadyExists(f"message {message_id} already exists") from None
            return _run_view(run)

        return await self._db.write_rows(work)

    async def get_chat(self, *, owner_id: int, chat_id: int, conversation_id: int) -> ChatRunView:
        _require_owner(owner_id)
        _require_chat_id(chat_id)
        return await self._db.read(
            lambda session: _run_view(_load_run(session, owner_id, chat_id, conversation_id))
        )

    async def list_chat_messages(
        self, *, owner_id: int, chat_id: int, conversation_id: int
    ) -> list[MessageView]:
        """The chat's input and answer, oldest first."""
        _require_owner(owner_id)
        _require_chat_id(chat_id)

        def work(session: Session) -> list[MessageView]:
            run = _load_run(session, owner_id, chat_id, conversation_id)
            records = session.exec(
                select(MessageRecord)
                .where(
                    MessageRecord.conversation_id == run.conversation_id,
                    MessageRecord.chat_id == run.id,
                )
                .order_by(col(MessageRecord.id).asc())
            )
            return [_message_view(r) for r in records]

        return await self._db.read(work)

    async def cancel_chat(
        self, *, owner_id: int, conversation_id: int, chat_id: int
    ) -> CanceledChat:
        """A queued chat is canceled at once; a running one is reported as running, for
        the caller to stop its runner (which then finishes it as canceled)."""
        _require_owner(owner_id)
        if conversation_id < 0 or chat_id < 0:
            raise InvalidArgument("conversation_id and chat_id must not be negative")
        if not conversation_id and not chat_id:
            raise InvalidArgument("conversation_id is required")

        def work(session: Session) -> CanceledChat:
            if chat_id:
                run = _load_run(session, owner_id, chat_id, conversation_id)
            else:
                _load_conversation(session, owner_id, conversation_id)
                found = session.exec(
                    select(ChatRunRecord)
                    .where(
                        ChatRunRecord.conversation_id == conversation_id,
                        col(ChatRunRecord.status).in_((CREATED, IN_PROGRESS, REQUIRES_ACTION)),
                    )
                    .order_by(col(ChatRunRecord.id).desc())
                    .limit(1)
                ).first()
                if found is None:
                    raise FailedPrecondition("no chat is running in this conversation")
                run = found
            for waiting in (CREATED, REQUIRES_ACTION):
                if run.status == waiting and _transition(
                    session,
                    run,
                    waiting,
                    status=ChatStatus.CANCELED,
                    canceled_at=int(time.time()),
                    **PAUSE_KEPT_EMPTIED,
                ):
                    return CanceledChat(_run_view(run), running=False)
            if run.status == IN_PROGRESS:
                now = int(time.time())
                if run.progress_at + self._run_silence_s <= now and _transition(
                    session,
                    run,
                    IN_PROGRESS,
                    status=ChatStatus.CANCELED,
                    canceled_at=now,
                    **PAUSE_KEPT_EMPTIED,
                ):
                    # No runner has shown progress for a whole silence window: nobody
                    # would hear a cancel request. A runner that shows up later finds
                    # the run ended (heartbeats and FinishRun say so).
                    return CanceledChat(_run_view(run), running=False)
                return CanceledChat(_run_view(run), running=True)
            raise FailedPrecondition(f"chat already {run.status}")

        return await self._db.write(work)

    async def abort_queued_chat(
        self, *, owner_id: int, chat_id: int, status: str, last_error: ChatError
    ) -> ChatRunView:
        """created -> failed | canceled, for a chat no runner has started (it could not
        be queued, or its client went away first)."""
        _require_owner(owner_id)
        _require_chat_id(chat_id)
        if status not in ABORT_STATUSES:
            raise InvalidArgument(f"status must be one of {', '.join(ABORT_STATUSES)}")

        def work(session: Session) -> ChatRunView:
            run = _load_run(session, owner_id, chat_id)
            aborted = _transition(
                session,
                run,
                CREATED,
                status=status,
                last_error_code=last_error.code,
                last_error_msg=last_error.msg,
                **PAUSE_KEPT_EMPTIED,
                **{ENDED_AT_COLUMN[ChatStatus(status)]: int(time.time())},
            )
            if aborted:
                return _run_view(run)
            if run.status == IN_PROGRESS:
                raise FailedPrecondition("a runner has already started the chat")
            raise FailedPrecondition(f"chat already {run.status}")

        return await self._db.write(work)

    # ------------------------------------------------------------ agent loop

    async def append_run_messages(
        self, *, owner_id: int, chat_id: int, messages: Sequence[RunMessage]
    ) -> list[MessageView]:
        """Stores a running chat's function_call / tool_response messages, and the answer
        text its model said before a round of calls.

        They are stored whatever the chat's auto_save_history: a paused run resumes from them.
        """
        _require_owner(owner_id)
        _require_chat_id(chat_id)
        if not messages or len(messages) > MAX_RUN_MESSAGES:
            raise InvalidArgument(f"messages: between 1 and {MAX_RUN_MESSAGES} required")
        for index, message in enumerate(messages):
            _check_run_message(message, f"messages[{index}]")

        def work(session: Session) -> list[MessageView]:
            run = _load_run(session, owner_id, chat_id)
            if run.status != IN_PROGRESS:
                raise FailedPrecondition(f"chat is {run.status}, not in_progress")
            stored = _stored_alike(session, run, messages)
            if stored is not None:
                # The retry of an append that landed but whose reply was lost.
                return [_message_view(r) for r in stored]
            records = _run_message_records(session, run, messages, int(time.time()))
            return [_message_view(r) for r in records]

        return await self._db.write(work)

    async def pause_run(
        self,
        *,
        owner_id: int,
        chat_id: int,
        tool_calls: Sequence[PendingToolCall],
        usage: Usage,
        custom_variables_json: str,
        first_token_ms: int,
        duration_ms: int,
        unsaved_input_json: str = "",
        answer_so_far: str = "",
    ) -> ChatRunView:
        """in_progress -> requires_action until the client submits the calls' outputs.

        `unsaved_input_json` is the input of a chat that does not save it (auto_save_history
        false): kept with the paused run, the only copy of its question, until it ends.
        `answer_so_far`, the answer text streamed before the pause, is kept likewise: the
        resumed run's answer continues it."""
        _require_owner(owner_id)
        _require_chat_id(chat_id)
        if not tool_calls or len(tool_calls) > MAX_PENDING_TOOL_CALLS:
            raise InvalidArgument(f"tool_calls: between 1 and {MAX_PENDING_TOOL_CALLS} required")
        ids = [c.id for c in tool_calls]
        if len(set(ids)) != len(ids) or any(not 0 < len(i) <= MAX_TOOL_CALL_ID_CHARS for i in ids):
            raise InvalidArgument("tool_calls need distinct, non-empty ids")
        if min(usage.prompt_tokens, usage.completion_tokens, first_token_ms, duration_ms) < 0:
            raise InvalidArgument("usage, first_token_ms and duration_ms must not be negative")
        variables = _parse_meta_data(custom_variables_json, "custom_variables_json")
        _check_unsaved_input(unsaved_input_json)
        if len(answer_so_far) > MAX_PAUSED_ANSWER_CHARS:
            raise InvalidArgument(
                f"answer_so_far: at most {MAX_PAUSED_ANSWER_CHARS} characters allowed"
            )
        pending = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in tool_calls]

        def work(session: Session) -> ChatRunView:
            run = _load_run(session, owner_id, chat_id)
            paused = _transition(
                session,
                run,
                IN_PROGRESS,
                status=REQUIRES_ACTION,
                pending_tool_calls=pending,
                paused_until=int(time.time()) + self._tool_outputs_timeout_s,
                custom_variables=variables,
                unsaved_input=unsaved_input_json if not run.auto_save_history else "",
                paused_answer=answer_so_far,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                first_token_ms=first_token_ms,
                duration_ms=duration_ms,
            )
            if not paused:
                if (
                    run.status == REQUIRES_ACTION
                    and [str(c.get("id", "")) for c in run.pending_tool_calls] == ids
                ):
                    # The retry of a pause that landed but whose reply was lost.
                    return _run_view(run)
                raise FailedPrecondition(f"chat is {run.status}, not in_progress")
            return _run_view(run)

        return await self._db.write(work)

    async def submit_tool_outputs(
        self,
        *,
        owner_id: int,
        conversation_id: int,
        chat_id: int,
        tool_outputs: Sequence[ToolOutput],
    ) -> ChatRunView:
        """Stores a paused chat's tool outputs (one per pending call, in the calls' order) as
        tool_response messages and moves it requires_action -> created, to be queued again.
        Anything wrong changes nothing."""
        _require_owner(owner_id)
        _require_chat_id(chat_id)
        if conversation_id <= 0:
            raise InvalidArgument("conversation_id is required")
        if not tool_outputs:
            raise InvalidArgument("tool_outputs is required")
        by_id: dict[str, str] = {}
        for index, output in enumerate(tool_outputs):
            if output.tool_call_id in by_id:
                raise InvalidArgument(
                    f"tool_outputs[{index}]: tool_call_id {output.tool_call_id!r} given twice"
                )
            if len(output.output) > MAX_CONTENT_CHARS:
                raise InvalidArgument(
                    f"tool_outputs[{index}].output must be at most {MAX_CONTENT_CHARS} characters"
                )
            by_id[output.tool_call_id] = output.output
        message_ids = [self._ids.next_id() for _ in tool_outputs]

        def work(session: Session) -> ChatRunView:
            run = _load_run(session, owner_id, chat_id, conversation_id)
            if run.status != REQUIRES_ACTION:
                raise FailedPrecondition(
                    f"chat is {run.status}: only a chat in requires_action takes tool outputs"
                )
            pending = [str(c.get("id", "")) for c in run.pending_tool_calls]
            unknown = sorted(set(by_id) - set(pending))
            if unknown:
                raise InvalidArgument(f"unknown tool_call_id: {', '.join(unknown)}")
            missing = [i for i in pending if i not in by_id]
            if missing:
                raise InvalidArgument(f"missing output for tool_call_id: {', '.join(missing)}")
            resumed = _transition(
                session,
                run,
                REQUIRES_ACTION,
                status=CREATED,
                paused_until=0,
                pending_tool_calls=[],
            )
            if not resumed:
                raise FailedPrecondition(f"chat is {run.status}, not requires_action")
            messages = [
                RunMessage(
                    id=message_id,
                    role=MessageRole.ASSISTANT,
                    type=MessageType.TOOL_RESPONSE,
                    content=by_id[call_id],
                    tool_call_id=call_id,
                )
                for call_id, message_id in zip(pending, message_ids, strict=True)
            ]
            _run_message_records(session, run, messages, int(time.time()))
            return _run_view(run)

        return await self._db.write(work)


# ------------------------------------------------------------------ helpers


def _check_run_message(message: RunMessage, field_name: str) -> None:
    if message.id <= 0:
        raise InvalidArgument(f"{field_name}.id must be a positive id")
    if message.role != MessageRole.ASSISTANT:
        raise InvalidArgument(f"{field_name}.role must be assistant")
    if message.type not in RUN_MESSAGE_TYPES:
        raise InvalidArgument(f"{field_name}.type must be one of {', '.join(RUN_MESSAGE_TYPES)}")
    if len(message.content) > MAX_CONTENT_CHARS:
        raise InvalidArgument(
            f"{field_name}.content must be at most {MAX_CONTENT_CHARS} characters"
        )
    if message.content_type not in ("", ContentType.TEXT):
        raise InvalidArgument(f"{field_name}.content_type must be text")


def _run_message_records(
    session: Session, run: ChatRunRecord, messages: Sequence[RunMessage], now: int
) -> list[MessageRecord]:
    records: list[MessageRecord] = []
    for message in messages:
        if session.get(MessageRecord, message.id) is not None:
            raise AlreadyExists(f"message {message.id} already exists")
        records.append(
            MessageRecord(
                id=message.id,
                conversation_id=run.conversation_id,
                section_id=run.section_id,
                chat_id=run.id,
                owner_id=run.owner_id,
                bot_id=run.bot_id,
                role=message.role,
                type=message.type,
                content=message.content,
                content_type=ContentType.TEXT,
                reasoning_content="",
                meta_data={TOOL_CALL_ID_META: message.tool_call_id} if message.tool_call_id else {},
                created_at=now,
                updated_at=now,
            )
        )
    session.add_all(records)
    return records


def _finished_alike(
    connection: sa.Connection,
    run: sa.Row[Any],
    status: str,
    last_error: ChatError,
    answer: str,
    answer_message_id: int,
) -> bool:
    """Whether the run already ended exactly as this FinishRun asks (an identical retry)."""
    if (run.status, run.last_error_code, run.last_error_msg) != (
        status,
        last_error.code,
        last_error.msg,
    ):
        return False
    if not run.auto_save_history:
        return True
    stored = connection.execute(_ANSWER_OF_CHAT, {"p_chat": run.id}).first()
    if not answer:
        return stored is None
    return stored is not None and stored.content == answer and answer_message_id in (0, stored.id)


def _stored_alike(
    session: Session, run: ChatRunRecord, messages: Sequence[RunMessage]
) -> list[MessageRecord] | None:
    """The run's stored messages if these very messages (ids, types, contents) are stored
    already; None if none of them is. Anything in between is a conflict."""
    found = [session.get(MessageRecord, m.id) for m in messages]
    if all(record is None for record in found):
        return None
    records = [r for r in found if r is not None]
    if len(records) == len(messages) and all(
        r.chat_id == run.id and r.type == m.type and r.content == m.content
        for r, m in zip(records, messages, strict=True)
    ):
        return records
    taken = next(m.id for m, r in zip(messages, found, strict=True) if r is not None)
    raise AlreadyExists(f"message {taken} already exists")


def _chat_messages(connection: sa.Connection, run: sa.Row[Any]) -> list[MessageView]:
    rows = connection.execute(_MESSAGES_OF_CHAT, {"p_chat": run.id})
    return [_message_view(r) for r in rows]


def _transition(session: Session, run: ChatRunRecord, expected: str, **values: Any) -> bool:
    """Applies `values` only if the run is still in status `expected`; True if it was.

    `run` is reloaded either way, so the caller sees what won: on PostgreSQL a
    concurrent transition makes this UPDATE wait for it and then match no row. Every
    transition is progress: the run sweeper measures its deadlines from it.
    """
    values.setdefault("progress_at", int(time.time()))
    result = session.execute(
        sa.update(ChatRunRecord)
        .where(col(ChatRunRecord.id) == run.id, col(ChatRunRecord.status) == expected)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.refresh(run)
    return cast("sa.CursorResult[Any]", result).rowcount == 1


def _history(
    connection: sa.Connection, run: sa.Row[Any] | ChatRunView, rounds: int
) -> list[MessageView]:
    """The run's section before the run, from the start of its `rounds`-th last round
    (one statement, see _HISTORY)."""
    if rounds == 0:
        return []
    rows = list(
        connection.execute(
            _HISTORY,
            {
                "p_conversation": run.conversation_id,
                "p_section": run.section_id,
                "p_chat": run.id,
                "p_skip": rounds - 1,
            },
        )
    )
    rows.reverse()
    return [_message_view(r) for r in rows]


def _require_owner(owner_id: int) -> None:
    if owner_id <= 0:
        raise InvalidArgument("owner_id is required")


def _require_conversation_id(conversation_id: int) -> None:
    if conversation_id <= 0:
        raise InvalidArgument("conversation_id is required")


def _require_message_id(message_id: int) -> None:
    if message_id <= 0:
        raise InvalidArgument("message_id is required")


def _require_chat_id(chat_id: int) -> None:
    if chat_id <= 0:
        raise InvalidArgument("chat_id is required")


def _validate_user_id(user_id: str) -> None:
    if len(user_id) > MAX_USER_ID_CHARS:
        raise InvalidArgument(f"user_id must be at most {MAX_USER_ID_CHARS} characters")


def _validate_name(name: str) -> str:
    name = name.strip()
    if len(name) > MAX_NAME_CHARS:
        raise InvalidArgument(f"name must be at most {MAX_NAME_CHARS} characters")
    return name


def _default_name(messages: Sequence[_CheckedMessage]) -> str:
    """The first message's text on one line, cut to fit, as the Coze API names them."""
    if not messages:
        return ""
    first = messages[0]
    parts = parse_content(first.content, first.content_type, first.type)
    text = " ".join(" ".join(p.text.split()) for p in parts if p.kind == "text" and p.text)
    return text.strip()[:MAX_NAME_CHARS]


def _is_descending(order: str, field_name: str) -> bool:
    value = order.lower() or "desc"
    if value not in ("asc", "desc"):
        raise InvalidArgument(f"{field_name} must be asc or desc")
    return value == "desc"


def _check_message(message: NewMessage, field_name: str) -> _CheckedMessage:
    if message.role not in ROLES:
        raise InvalidArgument(f"{field_name}.role must be user or assistant")
    message_type = message.type or DEFAULT_TYPE_BY_ROLE[MessageRole(message.role)]
    if not TYPE_PATTERN.fullmatch(message_type):
        raise InvalidArgument(
            f"{field_name}.type must be a lower-case word of at most 32 characters, "
            "like question or answer"
        )
    content, content_type = _check_content(
        message.content, message.content_type, message_type, f"{field_name}."
    )
    return _CheckedMessage(
        role=message.role,
        type=message_type,
        content=content,
        content_type=content_type,
        meta_data=_parse_meta_data(message.meta_data_json, f"{field_name}.meta_data_json"),
    )


def _check_content(
    content: str, content_type: str, message_type: str, prefix: str
) -> tuple[str, str]:
    content_type = content_type or "text"
    if content_type not in CONTENT_TYPES:
        raise InvalidArgument(
            f"{prefix}content_type must be one of {', '.join(sorted(CONTENT_TYPES))}"
        )
    if not content.strip():
        raise InvalidArgument(f"{prefix}content must not be empty")
    if len(content) > MAX_CONTENT_CHARS:
        raise InvalidArgument(f"{prefix}content must be at most {MAX_CONTENT_CHARS} characters")
    try:
        # The runner parses stored history the same way: what is stored must parse.
        parse_content(content, content_type, message_type)
    except ContentError as err:
        raise InvalidArgument(f"{prefix}content: {err}") from None
    return content, content_type


def _check_unsaved_input(raw: str) -> None:
    """A JSON list of at most MAX_CHAT_MESSAGES message objects, or ""."""
    if not raw:
        return
    if len(raw) > MAX_CHAT_MESSAGES * MAX_CONTENT_CHARS:
        raise InvalidArgument("unsaved_input_json is too large")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidArgument("unsaved_input_json must be a JSON list of messages") from None
    if (
        not isinstance(value, list)
        or len(value) > MAX_CHAT_MESSAGES
        or not all(isinstance(m, dict) for m in value)
    ):
        raise InvalidArgument(
            f"unsaved_input_json must be a JSON list of at most {MAX_CHAT_MESSAGES} messages"
        )


def _parse_meta_data(raw: str, field_name: str) -> dict[str, str]:
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidArgument(f"{field_name} must be a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field_name} must be a JSON object")
    if len(value) > MAX_META_PAIRS:
        raise InvalidArgument(f"{field_name}: at most {MAX_META_PAIRS} keys allowed")
    for key, item in value.items():
        if not key or len(key) > MAX_META_KEY_CHARS:
            raise InvalidArgument(
                f"{field_name}: keys must be 1 to {MAX_META_KEY_CHARS} characters"
            )
        if not isinstance(item, str):
            raise InvalidArgument(f"{field_name}: the value of {key!r} must be a string")
        if len(item) > MAX_META_VALUE_CHARS:
            raise InvalidArgument(
                f"{field_name}: the value of {key!r} must be at most "
                f"{MAX_META_VALUE_CHARS} characters"
            )
    return cast(dict[str, str], value)


def _require_bot(session: Session, owner_id: int, bot_id: int) -> None:
    found = session.exec(
        select(BotRecord.id).where(
            BotRecord.id == bot_id, BotRecord.owner_id == owner_id, BotRecord.deleted_at == 0
        )
    ).first()
    if found is None:
        raise NotFound(f"bot {bot_id} not found")


def _load_conversation(
    session: Session,
    owner_id: int,
    conversation_id: int,
    user_id: str = "",
    *,
    for_update: bool = False,
) -> ConversationRecord:
    query = select(ConversationRecord).where(
        ConversationRecord.id == conversation_id,
        ConversationRecord.owner_id == owner_id,
        ConversationRecord.deleted_at == 0,
    )
    if for_update:
        query = query.with_for_update()
    record = session.exec(query).one_or_none()
    if record is None or (user_id and record.user_id and record.user_id != user_id):
        raise NotFound(f"conversation {conversation_id} not found")
    return record


def _load_message(session: Session, conversation_id: int, message_id: int) -> MessageRecord:
    record = session.exec(
        select(MessageRecord).where(
            MessageRecord.id == message_id, MessageRecord.conversation_id == conversation_id
        )
    ).one_or_none()
    if record is None:
        raise NotFound(f"message {message_id} not found")
    return record


def _load_run(
    session: Session, owner_id: int, chat_id: int, conversation_id: int = 0
) -> ChatRunRecord:
    """conversation_id 0 accepts the chat in any conversation."""
    query = (
        select(ChatRunRecord)
        .join(ConversationRecord, col(ConversationRecord.id) == col(ChatRunRecord.conversation_id))
        .where(
            ChatRunRecord.id == chat_id,
            ChatRunRecord.owner_id == owner_id,
            ConversationRecord.deleted_at == 0,
        )
    )
    if conversation_id:
        query = query.where(ChatRunRecord.conversation_id == conversation_id)
    record = session.exec(query).one_or_none()
    if record is None:
        raise NotFound(f"chat {chat_id} not found")
    return record


def _new_conversation(
    conversation_id: int,
    owner_id: int,
    user_id: str,
    bot_id: int,
    name: str,
    meta_data: dict[str, str],
    now: int,
) -> ConversationRecord:
    return ConversationRecord(
        **_conversation_row(conversation_id, owner_id, user_id, bot_id, name, meta_data, now)
    )


def _message_records(
    conversation: ConversationRecord,
    messages: Sequence[_CheckedMessage],
    ids: Sequence[int],
    *,
    chat_id: int,
    now: int,
    bot_id: int = 0,
) -> list[MessageRecord]:
    """New messages in the conversation's current section; bot_id 0 is the conversation's."""
    return [
        MessageRecord(
            id=message_id,
            conversation_id=conversation.id,
            section_id=conversation.last_section_id,
            chat_id=chat_id,
            owner_id=conversation.owner_id,
            bot_id=bot_id or conversation.bot_id,
            role=message.role,
            type=message.type,
            content=message.content,
            content_type=message.content_type,
            reasoning_content="",
            meta_data=message.meta_data,
            created_at=now,
            updated_at=now,
        )
        for message, message_id in zip(messages, ids, strict=True)
    ]


def _conversation_view(record: ConversationRecord) -> ConversationView:
    return ConversationView(
        id=record.id,
        owner_id=record.owner_id,
        user_id=record.user_id,
        bot_id=record.bot_id,
        name=record.name,
        meta_data=dict(record.meta_data),
        created_at=record.created_at,
        updated_at=record.updated_at,
        last_section_id=record.last_section_id,
    )


def _message_view(record: MessageRecord | sa.Row[Any]) -> MessageView:
    return MessageView(
        id=record.id,
        conversation_id=record.conversation_id,
        section_id=record.section_id,
        chat_id=record.chat_id,
        bot_id=record.bot_id,
        role=record.role,
        type=record.type,
        content=record.content,
        content_type=record.content_type,
        reasoning_content=record.reasoning_content,
        meta_data=dict(record.meta_data),
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _run_view(record: ChatRunRecord | sa.Row[Any] | SimpleNamespace) -> ChatRunView:
    return ChatRunView(
        id=record.id,
        conversation_id=record.conversation_id,
        section_id=record.section_id,
        owner_id=record.owner_id,
        user_id=record.user_id,
        bot_id=record.bot_id,
        bot_version=record.bot_version,
        status=record.status,
        created_at=record.created_at,
        started_at=record.started_at,
        completed_at=record.completed_at,
        failed_at=record.failed_at,
        canceled_at=record.canceled_at,
        last_error=ChatError(record.last_error_code, record.last_error_msg),
        usage=Usage(record.prompt_tokens, record.completion_tokens),
        meta_data=dict(record.meta_data),
        first_token_ms=record.first_token_ms,
        duration_ms=record.duration_ms,
        model_id=record.model_id,
        auto_save_history=record.auto_save_history,
        pending_tool_calls=tuple(
            PendingToolCall(
                id=str(c.get("id", "")),
                name=str(c.get("name", "")),
                arguments=str(c.get("arguments", "")),
            )
            for c in record.pending_tool_calls
        ),
        paused_until=record.paused_until,
        custom_variables=dict(record.custom_variables),
    )


def run_view(record: ChatRunRecord) -> ChatRunView:
    """A run as callers see it (for the run sweeper, services/registry/run_liveness.py)."""
    return _run_view(record)


# -------------------------------------------------- a chat's calls, as Core statements
#
# CreateChat, StartRun and FinishRun are every chat's registry calls, so they skip the ORM
# (unit of work, identity map, refresh after each UPDATE) and run statements built once
# here, whose compiled form SQLAlchemy caches: a transition is one UPDATE ... RETURNING,
# an insert relies on the primary key instead of a read before it.

_BOTS = metadata.tables["bots"]
_CONVERSATIONS = metadata.tables["conversations"]
_MESSAGES = metadata.tables["messages"]
_RUNS = metadata.tables["chat_runs"]

_BOT_ALIVE = sa.select(_BOTS.c.id).where(
    _BOTS.c.id == sa.bindparam("p_bot"),
    _BOTS.c.owner_id == sa.bindparam("p_owner"),
    _BOTS.c.deleted_at == 0,
)
# Locked (PostgreSQL) so that a concurrent clear or delete cannot slip in between reading
# the section and adding the chat to it.
_CONVERSATION_FOR_CHAT = (
    sa.select(_CONVERSATIONS.c.user_id, _CONVERSATIONS.c.last_section_id)
    .where(
        _CONVERSATIONS.c.id == sa.bindparam("p_id"),
        _CONVERSATIONS.c.owner_id == sa.bindparam("p_owner"),
        _CONVERSATIONS.c.deleted_at == 0,
    )
    .with_for_update()
)
_INSERT_CONVERSATION = sa.insert(_CONVERSATIONS)
_INSERT_RUN = sa.insert(_RUNS)
_INSERT_MESSAGE = sa.insert(_MESSAGES)

_IN_LIVE_CONVERSATION = (
    sa.select(_CONVERSATIONS.c.id)
    .where(_CONVERSATIONS.c.id == _RUNS.c.conversation_id, _CONVERSATIONS.c.deleted_at == 0)
    .exists()
)
_OWN_RUN = (
    _RUNS.c.id == sa.bindparam("p_id"),
    _RUNS.c.owner_id == sa.bindparam("p_owner"),
    _IN_LIVE_CONVERSATION,
)
_LOAD_RUN = (
    sa.select(*_RUNS.c)
    .join(_CONVERSATIONS, _CONVERSATIONS.c.id == _RUNS.c.conversation_id)
    .where(
        _RUNS.c.id == sa.bindparam("p_id"),
        _RUNS.c.owner_id == sa.bindparam("p_owner"),
        _CONVERSATIONS.c.deleted_at == 0,
    )
)
# Every transition is progress: the run sweeper measures its deadlines from it.
_START_RUN = (
    sa.update(_RUNS)
    .where(*_OWN_RUN, _RUNS.c.status == CREATED)
    .values(status=IN_PROGRESS, started_at=sa.bindparam("p_now"), progress_at=sa.bindparam("p_now"))
    .returning(*_RUNS.c)
)
_FINISH_RUN = {
    status: sa.update(_RUNS)
    .where(*_OWN_RUN, _RUNS.c.status == IN_PROGRESS)
    .values(
        {
            "status": status,
            "last_error_code": sa.bindparam("p_code"),
            "last_error_msg": sa.bindparam("p_msg"),
            "prompt_tokens": sa.bindparam("p_prompt_tokens"),
            "completion_tokens": sa.bindparam("p_completion_tokens"),
            "first_token_ms": sa.bindparam("p_first_token_ms"),
            "duration_ms": sa.bindparam("p_duration_ms"),
            "progress_at": sa.bindparam("p_now"),
            **PAUSE_KEPT_EMPTIED,
            ENDED_AT_COLUMN[status]: sa.bindparam("p_now"),
        }
    )
    .returning(*_RUNS.c)
    for status in ENDED_STATUSES
}
_ANSWER_OF_CHAT = (
    sa.select(_MESSAGES.c.id, _MESSAGES.c.content)
    .where(_MESSAGES.c.chat_id == sa.bindparam("p_chat"), _MESSAGES.c.type == MessageType.ANSWER)
    .limit(1)
)
# By the chat alone: its messages are all in its conversation (whatever adds one takes the
# conversation from the run), and naming the conversation too let SQLite walk the
# conversation's whole (conversation_id, id) index instead of the chat's few rows.
_MESSAGES_OF_CHAT = (
    sa.select(*_MESSAGES.c)
    .where(_MESSAGES.c.chat_id == sa.bindparam("p_chat"))
    .order_by(_MESSAGES.c.id.asc())
    .limit(MAX_HISTORY_MESSAGES)
)
# The history window of a run: its section's conversation messages before it. Ids are
# time-ordered, so "id < the chat's id" is "created before the chat", which also keeps out
# the messages of chats that came later.
_BEFORE_RUN = (
    _MESSAGES.c.conversation_id == sa.bindparam("p_conversation"),
    _MESSAGES.c.section_id == sa.bindparam("p_section"),
    # Inline constants: a bound IN list is expanded into the SQL again on every execution.
    _MESSAGES.c.type.in_([sa.literal_column(f"'{t}'") for t in HISTORY_TYPES]),
    _MESSAGES.c.chat_id != sa.bindparam("p_chat"),
    _MESSAGES.c.id < sa.bindparam("p_chat"),
)
# The opening user message of the `p_skip + 1`-th last round; none when the section has
# fewer rounds, and then the whole section is the window.
_ROUND_START = (
    sa.select(_MESSAGES.c.id)
    .where(*_BEFORE_RUN, _MESSAGES.c.role == MessageRole.USER)
    .order_by(_MESSAGES.c.id.desc())
    .offset(sa.bindparam("p_skip"))
    .limit(1)
    .scalar_subquery()
)
# Both reads walk the (conversation_id, section_id, id) index backwards from the run and
# stop at the window, however long the conversation: newest first, turned around after.
_HISTORY = (
    sa.select(*_MESSAGES.c)
    .where(*_BEFORE_RUN, _MESSAGES.c.id >= sa.func.coalesce(_ROUND_START, 0))
    .order_by(_MESSAGES.c.id.desc())
    .limit(MAX_HISTORY_MESSAGES)
)


def _load_run_row(connection: sa.Connection, owner_id: int, chat_id: int) -> sa.Row[Any]:
    run = connection.execute(_LOAD_RUN, {"p_id": chat_id, "p_owner": owner_id}).first()
    if run is None:
        raise NotFound(f"chat {chat_id} not found")
    return run


def _conversation_row(
    conversation_id: int,
    owner_id: int,
    user_id: str,
    bot_id: int,
    name: str,
    meta_data: dict[str, str],
    now: int,
) -> dict[str, Any]:
    return {
        "id": conversation_id,
        "owner_id": owner_id,
        "user_id": user_id,
        "bot_id": bot_id,
        "name": name,
        "meta_data": meta_data,
        "created_at": now,
        "updated_at": now,
        # The first section shares the conversation's id, as Coze's do.
        "last_section_id": conversation_id,
        "deleted_at": 0,
    }


def _message_row(
    message_id: int,
    conversation_id: int,
    section_id: int,
    chat_id: int,
    owner_id: int,
    bot_id: int,
    message: _CheckedMessage,
    now: int,
) -> dict[str, Any]:
    return {
        "id": message_id,
        "conversation_id": conversation_id,
        "section_id": section_id,
        "chat_id": chat_id,
        "owner_id": owner_id,
        "bot_id": bot_id,
        "role": message.role,
        "type": message.type,
        "content": message.content,
        "content_type": message.content_type,
        "reasoning_content": "",
        "meta_data": message.meta_data,
        "created_at": now,
        "updated_at": now,
    }
