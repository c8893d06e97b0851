"""What end users leave on an account's bots: feedback on messages, and variable values that
prompts read as `{{name}}` (per account, bot and end user)."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from cozeplus.ids import IdGenerator
from cozeplus.vocabulary import MessageRole
from services.registry.database import Database
from services.registry.errors import InvalidArgument, NotFound
from services.registry.tables import (
    BotRecord,
    ConversationRecord,
    MessageFeedbackRecord,
    MessageRecord,
    UserVariableRecord,
)

FEEDBACK_TYPES = ("like", "unlike")
MAX_REASON_TYPES = 10
MAX_REASON_TYPE_CHARS = 64
MAX_COMMENT_CHARS = 1024
# The names the runner substitutes in prompts (services/runner/prompt.py).
KEYWORD_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}", re.ASCII)
MAX_VALUE_CHARS = 16_384
# As many as one chat's custom_variables may carry (the edge's default limit).
MAX_VARIABLES_PER_SCOPE = 64
MAX_CONNECTOR_UID_CHARS = 255


@dataclass(frozen=True)
class FeedbackView:
    message_id: int
    conversation_id: int
    feedback_type: str
    reason_types: list[str]
    comment: str
    created_at: int
    updated_at: int


@dataclass(frozen=True)
class VariableScope:
    owner_id: int
    bot_id: int
    app_id: int
    connector_uid: str


@dataclass(frozen=True)
class VariableView:
    keyword: str
    value: str
    create_time: int
    update_time: int


class FeedbackService:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def set_feedback(
        self,
        *,
        owner_id: int,
        conversation_id: int,
        message_id: int,
        feedback_type: str,
        reason_types: Sequence[str],
        comment: str,
    ) -> FeedbackView:
        _require_ref(owner_id, conversation_id, message_id)
        if feedback_type not in FEEDBACK_TYPES:
            raise InvalidArgument("feedback_type must be like or unlike")
        if len(reason_types) > MAX_REASON_TYPES or any(
            not r or len(r) > MAX_REASON_TYPE_CHARS for r in reason_types
        ):
            raise InvalidArgument(
                f"reason_types: at most {MAX_REASON_TYPES} non-empty strings of at most "
                f"{MAX_REASON_TYPE_CHARS} characters"
            )
        if len(comment) > MAX_COMMENT_CHARS:
            raise InvalidArgument(f"comment must be at most {MAX_COMMENT_CHARS} characters")

        def work(session: Session) -> FeedbackView:
            message = _load_message(session, owner_id, conversation_id, message_id)
            if message.role != MessageRole.ASSISTANT:
                raise InvalidArgument("feedback is given on the bot's messages, not the user's")
            now = int(time.time())
            record = session.get(MessageFeedbackRecord, message_id)
            if record is None:
                record = MessageFeedbackRecord(
                    message_id=message_id,
                    conversation_id=conversation_id,
                    owner_id=owner_id,
                    created_at=now,
                    feedback_type=feedback_type,
                    reason_types=list(reason_types),
                    comment=comment,
                    updated_at=now,
                )
                session.add(record)
            else:
                record.feedback_type = feedback_type
                record.reason_types = list(reason_types)
                record.comment = comment
                record.updated_at = now
            return _feedback_view(record)

        return await self._db.write(work)

    async def get_feedback(
        self, *, owner_id: int, conversation_id: int, message_id: int
    ) -> FeedbackView:
        _require_ref(owner_id, conversation_id, message_id)

        def work(session: Session) -> FeedbackView:
            _load_message(session, owner_id, conversation_id, message_id)
            record = session.get(MessageFeedbackRecord, message_id)
            if record is None:
                raise NotFound(f"message {message_id} has no feedback")
            return _feedback_view(record)

        return await self._db.read(work)

    async def delete_feedback(
        self, *, owner_id: int, conversation_id: int, message_id: int
    ) -> bool:
        """Idempotent: False when there was none."""
        _require_ref(owner_id, conversation_id, message_id)

        def work(session: Session) -> bool:
            _load_message(session, owner_id, conversation_id, message_id)
            record = session.get(MessageFeedbackRecord, message_id)
            if record is None:
                return False
            session.delete(record)
            return True

        return await self._db.write(work)


class VariableService:
    def __init__(self, database: Database, ids: IdGenerator) -> None:
        self._db = database
        self._ids = ids

    async def set_variables(
        self, scope: VariableScope, values: Sequence[tuple[str, str]]
    ) -> list[VariableView]:
        """Upserts `values` (keyword, value); the scope's other variables are kept."""
        _check_scope(scope)
        if not values:
            raise InvalidArgument("data must hold at least one variable")
        keywords = [keyword for keyword, _ in values]
        if len(set(keywords)) != len(keywords):
            raise InvalidArgument("data: each keyword at most once")
        for keyword, value in values:
            _check_keyword(keyword)
            if len(value) > MAX_VALUE_CHARS:
                raise InvalidArgument(
                    f"data: the value of {keyword!r} must be at most {MAX_VALUE_CHARS} characters"
                )
        new_ids = {keyword: self._ids.next_id() for keyword in keywords}

        def work(session: Session) -> list[VariableView]:
            _load_bot(session, scope)
            existing = {r.keyword: r for r in session.exec(_scope_query(scope))}
            added = [k for k in keywords if k not in existing]
            if len(existing) + len(added) > MAX_VARIABLES_PER_SCOPE:
                raise InvalidArgument(
                    f"at most {MAX_VARIABLES_PER_SCOPE} variables per bot and user; "
                    f"{len(existing)} are set already"
                )
            now = int(time.time())
            changed: list[UserVariableRecord] = []
            for keyword, value in values:
                record = existing.get(keyword)
                if record is None:
                    record = UserVariableRecord(
                        id=new_ids[keyword],
                        owner_id=scope.owner_id,
                        bot_id=scope.bot_id,
                        app_id=scope.app_id,
                        connector_uid=scope.connector_uid,
                        keyword=keyword,
                        value=value,
                        created_at=now,
                        updated_at=now,
                    )
                    session.add(record)
                else:
                    record.value = value
                    record.updated_at = now
                changed.append(record)
            return [_variable_view(r) for r in changed]

        return await self._db.write(work)

    async def get_variables(
        self, scope: VariableScope, keywords: Sequence[str]
    ) -> list[VariableView]:
        """The scope's variables named in `keywords` (all of them when empty), by keyword."""
        _check_scope(scope)
        for keyword in keywords:
            _check_keyword(keyword)

        def work(session: Session) -> list[VariableView]:
            _load_bot(session, scope)
            query = _scope_query(scope)
            if keywords:
                query = query.where(col(UserVariableRecord.keyword).in_(list(keywords)))
            records = session.exec(query.order_by(col(UserVariableRecord.keyword)))
            return [_variable_view(r) for r in records]

        return await self._db.read(work)


def _require_ref(owner_id: int, conversation_id: int, message_id: int) -> None:
    if owner_id <= 0:
        raise InvalidArgument("owner_id is required")
    if conversation_id <= 0:
        raise InvalidArgument("conversation_id is required")
    if message_id <= 0:
        raise InvalidArgument("message_id is required")


def _load_message(
    session: Session, owner_id: int, conversation_id: int, message_id: int
) -> MessageRecord:
    conversation = session.get(ConversationRecord, conversation_id)
    if conversation is None or conversation.owner_id != owner_id or conversation.deleted_at:
        raise NotFound(f"conversation {conversation_id} not found")
    message = session.get(MessageRecord, message_id)
    if message is None or message.conversation_id != conversation_id:
        raise NotFound(f"message {message_id} not found")
    return message


def _feedback_view(record: MessageFeedbackRecord) -> FeedbackView:
    return FeedbackView(
        message_id=record.message_id,
        conversation_id=record.conversation_id,
        feedback_type=record.feedback_type,
        reason_types=list(record.reason_types),
        comment=record.comment,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _check_scope(scope: VariableScope) -> None:
    if scope.owner_id <= 0:
        raise InvalidArgument("owner_id is required")
    if scope.app_id:
        raise InvalidArgument("app_id: this server has no apps; use bot_id")
    if scope.bot_id <= 0:
        raise InvalidArgument("bot_id is required")
    if not scope.connector_uid or len(scope.connector_uid) > MAX_CONNECTOR_UID_CHARS:
        raise InvalidArgument(
            f"connector_uid is required (the chat's user_id), at most "
            f"{MAX_CONNECTOR_UID_CHARS} characters"
        )


def _check_keyword(keyword: str) -> None:
    if not KEYWORD_PATTERN.fullmatch(keyword):
        raise InvalidArgument(
            f"keyword {keyword!r}: a letter or '_', then letters, digits, '_', '.' or '-' "
            "(at most 128 characters), as prompts write {{name}}"
        )


def _load_bot(session: Session, scope: VariableScope) -> BotRecord:
    record = session.get(BotRecord, scope.bot_id)
    if record is None or record.owner_id != scope.owner_id or record.deleted_at:
        raise NotFound(f"bot {scope.bot_id} not found")
    return record


def _scope_query(scope: VariableScope) -> SelectOfScalar[UserVariableRecord]:
    return select(UserVariableRecord).where(
        UserVariableRecord.owner_id == scope.owner_id,
        UserVariableRecord.bot_id == scope.bot_id,
        UserVariableRecord.app_id == scope.app_id,
        UserVariableRecord.connector_uid == scope.connector_uid,
    )


def _variable_view(record: UserVariableRecord) -> VariableView:
    return VariableView(record.keyword, record.value, record.created_at, record.updated_at)
