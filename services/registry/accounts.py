"""Accounts: users, password sessions, API keys, and authentication of either.

Secrets (session keys, API keys) are random, shown once, and stored only as sha256
hashes; a leaked database cannot be replayed against the API. sha256 (not a slow KDF)
is right for them because they carry 190+ bits of entropy; passwords, which do not,
get argon2id.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

import orjson
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from nats.aio.client import Client as NATS
from sqlmodel import Session, col, func, select

from cozeplus.ids import IdGenerator
from cozeplus.subjects import AUTH_REVOKED
from services.registry.database import Database
from services.registry.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from services.registry.paging import Page, PageRequest
from services.registry.tables import ApiKeyRecord, SessionRecord, UserEmailRecord, UserRecord

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{3,64}", re.ASCII)
# Deliberately loose (one @, a dot in the domain, no spaces): mail servers are the judge.
EMAIL_PATTERN = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
MAX_EMAIL_CHARS = 254
MIN_PASSWORD_CHARS = 8
# Bounds the work one login can cause; argon2 would happily hash megabytes.
MAX_PASSWORD_CHARS = 1024
MAX_DISPLAY_NAME_CHARS = 100
MAX_KEY_NAME_CHARS = 100
# Keeps expires_at far inside int64 and JavaScript's exact integers.
MAX_KEY_LIFETIME_S = 100 * 365 * 24 * 3600
API_KEY_PREFIX = "pat_"
API_KEY_SHOWN_PREFIX_CHARS = 12
# last_used_at is informational; writing it on every request would turn each
# authenticated call into a database write.
LAST_USED_RESOLUTION_S = 60
INVALID_LOGIN = "invalid username or password"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UserView:
    id: int
    username: str
    display_name: str
    created_at: int
    # Filled in by create_user and login only: "" elsewhere.
    email: str = ""


@dataclass(frozen=True)
class LoginResult:
    session_key: str
    user: UserView
    expires_at: int


@dataclass(frozen=True)
class Principal:
    user: UserView
    kind: Literal["api_key", "session"]
    credential_id: int
    # 0 = never.
    expires_at: int


@dataclass(frozen=True)
class ApiKeyView:
    id: int
    user_id: int
    name: str
    created_at: int
    expires_at: int
    last_used_at: int
    prefix: str
    revoked: bool


class RevocationBroadcast(Protocol):
    async def credential_revoked(self, credential_id: int) -> None: ...

    async def credentials_revoked(self, credential_ids: Sequence[int]) -> None: ...


class NatsRevocationBroadcast:
    """Tells every edge to drop a credential from its auth cache, over core NATS."""

    def __init__(self, nc: NATS, timeout_s: int = 2) -> None:
        self._nc = nc
        self._timeout_s = timeout_s

    async def credential_revoked(self, credential_id: int) -> None:
        await self.credentials_revoked([credential_id])

    async def credentials_revoked(self, credential_ids: Sequence[int]) -> None:
        try:
            for credential_id in credential_ids:
                await self._nc.publish(AUTH_REVOKED, orjson.dumps({"credential_id": credential_id}))
            # Flushing pushes the messages out and fails if the server stopped answering, so a
            # dead connection is reported rather than hidden. It is not a delivery receipt:
            # nats-py 2.16 may send its PING ahead of still-buffered messages. Edges also
            # bound a missed revocation by their auth-cache TTL.
            await self._nc.flush(timeout=self._timeout_s)
        except Exception as exc:
            log.exception("could not broadcast revocation of credentials %s", credential_ids)
            raise Unavailable(
                "the credential is revoked, but edges could not be told yet; retry to re-send"
            ) from exc


class AccountService:
    def __init__(
        self,
        database: Database,
        ids: IdGenerator,
        revocations: RevocationBroadcast,
        *,
        session_ttl_s: int,
    ) -> None:
        self._db = database
        self._ids = ids
        self._revocations = revocations
        self._session_ttl_s = session_ttl_s
        self._hasher = PasswordHasher()  # argon2id with the library's current defaults
        # Verified against when the username does not exist, so an unknown user takes
        # as long to reject as a wrong password and usernames cannot be probed by timing.
        self._decoy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    # ------------------------------------------------------------------ users

    async def create_user(
        self, *, username: str, password: str, display_name: str, email: str = ""
    ) -> UserView:
        """By username, by email, or both. Without a username, the email's local part is the
        username (with the new id's last digits when that is taken or unusable)."""
        if not username and not email:
            raise InvalidArgument("username or email is required")
        if email and (len(email) > MAX_EMAIL_CHARS or not EMAIL_PATTERN.fullmatch(email)):
            raise InvalidArgument("email must be an address like name@example.com")
        if username and not USERNAME_PATTERN.fullmatch(username):
            raise InvalidArgument(
                "username must be 3 to 64 characters of letters, digits, '_', '.' or '-'"
            )
        _validate_password(password)
        user_id = self._ids.next_id()
        derived = not username
        if derived:
            username = _username_from_email(email, user_id, with_suffix=False)
        display_name = display_name.strip() or username
        if len(display_name) > MAX_DISPLAY_NAME_CHARS:
            raise InvalidArgument(
                f"display_name must be at most {MAX_DISPLAY_NAME_CHARS} characters"
            )
        password_hash = await asyncio.to_thread(self._hasher.hash, password)

        def work(session: Session) -> UserView:
            nonlocal username
            if email:
                email_taken = session.exec(
                    select(UserEmailRecord.user_id).where(
                        UserEmailRecord.email_key == email.lower()
                    )
                ).first()
                if email_taken is not None:
                    raise AlreadyExists(f"email {email!r} is taken")
            taken = session.exec(
                select(UserRecord.id).where(UserRecord.username_key == username.lower())
            ).first()
            if taken is not None and derived:
                username = _username_from_email(email, user_id, with_suffix=True)
            elif taken is not None:
                raise AlreadyExists(f"username {username!r} is taken")
            record = UserRecord(
                id=user_id,
                username=username,
                username_key=username.lower(),
                display_name=display_name,
                password_hash=password_hash,
                created_at=int(time.time()),
            )
            session.add(record)
            if email:
                # The user row first: the email row's foreign key points at it.
                session.flush()
                session.add(UserEmailRecord(user_id=user_id, email=email, email_key=email.lower()))
            return replace(_user_view(record), email=email)

        try:
            return await self._db.write(work)
        except sa.exc.IntegrityError as exc:
            # Two registrations of one name raced past the check; the constraint decided.
            raise AlreadyExists(f"username {username!r} or email {email!r} is taken") from exc

    async def get_user(self, *, user_id: int, username: str) -> UserView:
        """By id when given, else by username (case-insensitive)."""
        if user_id <= 0 and not username:
            raise InvalidArgument("id or username is required")

        def work(session: Session) -> UserView:
            if user_id > 0:
                record = session.get(UserRecord, user_id)
            else:
                record = session.exec(
                    select(UserRecord).where(UserRecord.username_key == username.lower())
                ).first()
            if record is None or record.deleted_at:
                raise NotFound("user not found")
            return _user_view(record)

        return await self._db.read(work)

    async def delete_user(self, *, user_id: int) -> int:
        """Marks the account deleted and revokes its sessions and API keys in one
        transaction, then tells every edge; returns how many credentials this call revoked.

        Idempotent: a repeated call re-sends the broadcasts of every credential revoked since
        the deletion (to the second), so a caller whose broadcast failed (Unavailable) simply
        retries. Announcing a credential that was already revoked is harmless.
        """
        _require_user_id(user_id)
        now = int(time.time())

        def work(session: Session) -> tuple[int, list[int]]:
            user = session.get(UserRecord, user_id)
            if user is None:
                raise NotFound("user not found")
            if not user.deleted_at:
                user.deleted_at = now
            credentials: list[SessionRecord | ApiKeyRecord] = [
                *session.exec(select(SessionRecord).where(SessionRecord.user_id == user_id)),
                *session.exec(select(ApiKeyRecord).where(ApiKeyRecord.user_id == user_id)),
            ]
            newly_revoked = 0
            for record in credentials:
                if not record.revoked_at:
                    record.revoked_at = now
                    newly_revoked += 1
            announce = [r.id for r in credentials if r.revoked_at >= user.deleted_at]
            return newly_revoked, announce

        newly_revoked, announce = await self._db.write(work)
        if announce:
            await self._revocations.credentials_revoked(announce)
        log.info("user %d deleted; %d credentials revoked", user_id, newly_revoked)
        return newly_revoked

    # --------------------------------------------------------------- sessions

    async def login(self, *, username: str, password: str) -> LoginResult:
        if not username or not password or len(password) > MAX_PASSWORD_CHARS:
            raise Unauthenticated(INVALID_LOGIN)

        def find_user(session: Session) -> tuple[UserRecord | None, str]:
            if "@" in username:
                # Usernames never contain @: this is the email the account registered with.
                row = session.exec(
                    select(UserRecord, UserEmailRecord)
                    .join(UserEmailRecord, col(UserEmailRecord.user_id) == col(UserRecord.id))
                    .where(UserEmailRecord.email_key == username.lower())
                ).first()
                return (row[0], row[1].email) if row is not None else (None, "")
            record = session.exec(
                select(UserRecord).where(UserRecord.username_key == username.lower())
            ).first()
            if record is None:
                return None, ""
            email_row = session.get(UserEmailRecord, record.id)
            return record, email_row.email if email_row is not None else ""

        user, email = await self._db.read(find_user)
        if user is not None and user.deleted_at:
            # Refused like an unknown username, after the same amount of work.
            user = None
        stored_hash = user.password_hash if user is not None else self._decoy_hash
        matches = await asyncio.to_thread(self._password_matches, stored_hash, password)
        if user is None or not matches:
            raise Unauthenticated(INVALID_LOGIN)
        user_id = user.id
        if self._hasher.check_needs_rehash(stored_hash):
            new_hash = await asyncio.to_thread(self._hasher.hash, password)
        else:
            new_hash = None

        session_key = _new_session_key()
        session_id = self._ids.next_id()
        now = int(time.time())
        expires_at = now + self._session_ttl_s

        def work(session: Session) -> None:
            session.add(
                SessionRecord(
                    id=session_id,
                    user_id=user_id,
                    token_hash=_token_hash(session_key),
                    created_at=now,
                    expires_at=expires_at,
                )
            )
            if new_hash is not None:
                record = session.get(UserRecord, user_id)
                if record is not None:
                    record.password_hash = new_hash

        await self._db.write(work)
        return LoginResult(session_key, replace(_user_view(user), email=email), expires_at)

    async def logout(self, *, session_key: str) -> None:
        """Idempotent: an unknown or already revoked session is not an error."""
        if not session_key:
            raise InvalidArgument("session_key is required")

        def work(session: Session) -> int | None:
            record = session.exec(
                select(SessionRecord).where(SessionRecord.token_hash == _token_hash(session_key))
            ).first()
            if record is None:
                return None
            if not record.revoked_at:
                record.revoked_at = int(time.time())
            return record.id

        session_id = await self._db.write(work)
        if session_id is not None:
            await self._revocations.credential_revoked(session_id)

    # ---------------------------------------------------------- authenticate

    async def authenticate(self, *, token: str) -> Principal:
        if not token:
            raise Unauthenticated("missing token")
        if token.startswith(API_KEY_PREFIX):
            return await self._authenticate_api_key(token)
        return await self._authenticate_session(token)

    async def _authenticate_api_key(self, token: str) -> Principal:
        now = int(time.time())

        def work(session: Session) -> tuple[ApiKeyRecord, UserRecord]:
            row = session.exec(
                select(ApiKeyRecord, UserRecord)
                .join(UserRecord, col(UserRecord.id) == col(ApiKeyRecord.user_id))
                .where(ApiKeyRecord.token_hash == _token_hash(token))
            ).first()
            if row is None:
                raise Unauthenticated("invalid api key")
            key, user = row
            if key.revoked_at or user.deleted_at:
                # Deleting an account revokes its keys too; this also covers a key created
                # while the deletion was being committed.
                raise Unauthenticated("api key revoked")
            if key.expires_at and key.expires_at <= now:
                raise Unauthenticated("api key expired")
            return key, user

        key, user = await self._db.read(work)
        if now - key.last_used_at >= LAST_USED_RESOLUTION_S:
            try:
                await self._touch_api_key(key.id, now)
            except Unavailable:
                # Bookkeeping only: a busy database must not fail a valid credential.
                log.warning("could not record last use of api key %s", key.id)
        return Principal(_user_view(user), "api_key", key.id, key.expires_at)

    async def _touch_api_key(self, key_id: int, now: int) -> None:
        def work(session: Session) -> None:
            # Conditional, so replicas authenticating the same key at once write once.
            session.execute(
                sa.update(ApiKeyRecord)
                .where(
                    col(ApiKeyRecord.id) == key_id,
                    col(ApiKeyRecord.last_used_at) <= now - LAST_USED_RESOLUTION_S,
                )
                .values(last_used_at=now)
            )

        await self._db.write(work)

    async def _authenticate_session(self, token: str) -> Principal:
        now = int(time.time())

        def work(session: Session) -> Principal:
            row = session.exec(
                select(SessionRecord, UserRecord)
                .join(UserRecord, col(UserRecord.id) == col(SessionRecord.user_id))
                .where(SessionRecord.token_hash == _token_hash(token))
            ).first()
            if row is None:
                raise Unauthenticated("invalid session")
            record, user = row
            if record.revoked_at or user.deleted_at:
                raise Unauthenticated("session ended")
            if record.expires_at <= now:
                raise Unauthenticated("session expired")
            return Principal(_user_view(user), "session", record.id, record.expires_at)

        return await self._db.read(work)

    # --------------------------------------------------------------- api keys

    async def create_api_key(
        self, *, user_id: int, name: str, expires_in: int
    ) -> tuple[ApiKeyView, str]:
        """Returns the key and its token; the token is never retrievable again."""
        _require_user_id(user_id)
        name = _validate_key_name(name)
        if not 0 <= expires_in <= MAX_KEY_LIFETIME_S:
            raise InvalidArgument(
                f"expires_in must be between 0 (never) and {MAX_KEY_LIFETIME_S} seconds"
            )
        token = API_KEY_PREFIX + secrets.token_urlsafe(36)
        key_id = self._ids.next_id()

        def work(session: Session) -> ApiKeyView:
            user = session.get(UserRecord, user_id)
            if user is None or user.deleted_at:
                raise NotFound("user not found")
            now = int(time.time())
            record = ApiKeyRecord(
                id=key_id,
                user_id=user_id,
                name=name,
                token_hash=_token_hash(token),
                prefix=token[:API_KEY_SHOWN_PREFIX_CHARS],
                created_at=now,
                expires_at=now + expires_in if expires_in else 0,
            )
            session.add(record)
            return _api_key_view(record)

        return await self._db.write(work), token

    async def list_api_keys(self, *, user_id: int, page: PageRequest) -> Page[ApiKeyView]:
        """The user's keys that are not revoked (revoking is how keys are deleted),
        newest first; expired keys stay listed so their owner sees why they fail."""
        _require_user_id(user_id)

        def work(session: Session) -> Page[ApiKeyView]:
            conditions = (ApiKeyRecord.user_id == user_id, ApiKeyRecord.revoked_at == 0)
            total = session.exec(
                select(func.count()).select_from(ApiKeyRecord).where(*conditions)
            ).one()
            records = session.exec(
                select(ApiKeyRecord)
                .where(*conditions)
                .order_by(col(ApiKeyRecord.id).desc())
                .offset(page.offset)
                .limit(page.size)
            )
            return Page([_api_key_view(r) for r in records], total)

        return await self._db.read(work)

    async def get_api_key(self, *, user_id: int, key_id: int) -> ApiKeyView:
        _require_user_id(user_id)
        return await self._db.read(
            lambda session: _api_key_view(_load_api_key(session, user_id, key_id))
        )

    async def update_api_key(self, *, user_id: int, key_id: int, name: str) -> ApiKeyView:
        _require_user_id(user_id)
        name = _validate_key_name(name)

        def work(session: Session) -> ApiKeyView:
            record = _load_api_key(session, user_id, key_id)
            if record.revoked_at:
                raise FailedPrecondition(f"api key {key_id} is revoked")
            record.name = name
            return _api_key_view(record)

        return await self._db.write(work)

    async def revoke_api_key(self, *, user_id: int, key_id: int) -> None:
        """Idempotent, and re-broadcasts each time: a caller whose broadcast failed
        retries the same call."""
        _require_user_id(user_id)

        def work(session: Session) -> None:
            record = _load_api_key(session, user_id, key_id)
            if not record.revoked_at:
                record.revoked_at = int(time.time())

        await self._db.write(work)
        await self._revocations.credential_revoked(key_id)

    def _password_matches(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def _validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidArgument(f"password must be at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidArgument(f"password must be at most {MAX_PASSWORD_CHARS} characters")


def _validate_key_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidArgument("name is required")
    if len(name) > MAX_KEY_NAME_CHARS:
        raise InvalidArgument(f"name must be at most {MAX_KEY_NAME_CHARS} characters")
    return name


def _require_user_id(user_id: int) -> None:
    if user_id <= 0:
        raise InvalidArgument("user_id is required")


def _new_session_key() -> str:
    # Authenticate routes tokens by prefix; a session key must never look like an API key.
    while True:
        key = secrets.token_urlsafe(32)
        if not key.startswith(API_KEY_PREFIX):
            return key


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _load_api_key(session: Session, user_id: int, key_id: int) -> ApiKeyRecord:
    record = session.get(ApiKeyRecord, key_id)
    if record is None or record.user_id != user_id:
        raise NotFound(f"api key {key_id} not found")
    return record


def _username_from_email(email: str, user_id: int, *, with_suffix: bool) -> str:
    """The email's local part, kept to the username alphabet; with the id's last digits
    when the plain form is taken or too short."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "", email.split("@", 1)[0])[:50]
    if with_suffix or len(base) < 3:
        return f"{base or 'user'}-{user_id % 1_000_000:06d}"
    return base


def _user_view(record: UserRecord) -> UserView:
    return UserView(record.id, record.username, record.display_name, record.created_at)


def _api_key_view(record: ApiKeyRecord) -> ApiKeyView:
    return ApiKeyView(
        id=record.id,
        user_id=record.user_id,
        name=record.name,
        created_at=record.created_at,
        expires_at=record.expires_at,
        last_used_at=record.last_used_at,
        prefix=record.prefix,
        revoked=bool(record.revoked_at),
    )
