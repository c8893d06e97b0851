"""Who is calling: a token (an API key or a session key, from HTTP headers, the cookie or gRPC
metadata), checked by the registry's Accounts.Authenticate and cached briefly. Shared by the
HTTP routes and the gRPC API, so both see the same cache and the same revocations.

The cache is what keeps authentication off the registry's back on every request; it must not
keep a revoked credential alive. So entries are keyed by sha256(token) (the token itself is
never held), expiry is checked locally on every hit, and an AUTH_REVOKED broadcast evicts every
entry of the revoked credential. While NATS is down broadcasts may be missed, so the cache is
emptied and bypassed until the connection is back.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import orjson

from cozeplus.rpc.v1 import registry_pb2 as pb
from services.edge.core.errors import Unauthenticated

if TYPE_CHECKING:
    from cozeplus.rpc.v1.registry_pb2_grpc import AccountsAsyncStub

log = logging.getLogger(__name__)

# Real tokens are far shorter; anything this long is not worth a registry round trip.
MAX_TOKEN_CHARS = 512


def unauthorized(msg: str) -> Unauthenticated:
    return Unauthenticated(msg)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated account and the credential it used."""

    user_id: int
    username: str
    display_name: str
    user_created_at: int
    # "api_key" or "session".
    kind: str
    credential_id: int
    # Unix seconds; 0 = never.
    expires_at: int

    @classmethod
    def from_proto(cls, principal: pb.Principal) -> Principal:
        return cls(
            user_id=principal.user.id,
            username=principal.user.username,
            display_name=principal.user.display_name,
            user_created_at=principal.user.created_at,
            kind=principal.kind,
            credential_id=principal.credential_id,
            expires_at=principal.expires_at,
        )

    def expired(self, now: float) -> bool:
        return self.expires_at != 0 and now >= self.expires_at


@dataclass(frozen=True, slots=True)
class Credentials:
    principal: Principal
    token: str
    from_cookie: bool


@dataclass(slots=True)
class _CacheEntry:
    principal: Principal
    cached_at: float


class Authenticator:
    def __init__(
        self, accounts: AccountsAsyncStub, ttl_s: float, max_entries: int = 10_000
    ) -> None:
        self._accounts = accounts
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: OrderedDict[bytes, _CacheEntry] = OrderedDict()
        self._by_credential: dict[int, set[bytes]] = {}
        # Bumped by every eviction: an Authenticate answer that raced a revocation is used
        # for its own request but not cached.
        self._evictions = 0
        self._cache_enabled = False

    async def authenticate(self, token: str) -> Principal:
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise unauthorized("invalid credentials")
        digest = hashlib.sha256(token.encode()).digest()
        now = time.time()
        entry = self._entries.get(digest)
        if entry is not None:
            if time.monotonic() - entry.cached_at >= self._ttl_s:
                self._drop(digest)
            elif entry.principal.expired(now):
                self._drop(digest)
                raise unauthorized("credentials expired")
            else:
                self._entries.move_to_end(digest)
                return entry.principal

        evictions = self._evictions
        try:
            reply = await self._accounts.Authenticate(pb.AuthenticateRequest(token=token))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise unauthorized("invalid, expired or revoked credentials") from None
            raise
        principal = Principal.from_proto(reply)
        if principal.expired(now):
            raise unauthorized("credentials expired")
        if self._cache_enabled and evictions == self._evictions and self._ttl_s > 0:
            self._store(digest, principal)
        return principal

    def evict_credential(self, credential_id: int) -> None:
        self._evictions += 1
        for digest in self._by_credential.pop(credential_id, ()):
            self._entries.pop(digest, None)

    def set_cache_enabled(self, enabled: bool) -> None:
        """Follows the NATS connection: without it revocations could go unheard."""
        self._evictions += 1
        self._entries.clear()
        self._by_credential.clear()
        self._cache_enabled = enabled

    async def on_revoked_message(self, msg: Any) -> None:
        try:
            credential_id = orjson.loads(msg.data)["credential_id"]
            if isinstance(credential_id, bool) or not isinstance(credential_id, int):
                raise TypeError("credential_id is not an integer")
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            log.warning("ignoring malformed revocation message %r: %s", msg.data[:200], exc)
            return
        self.evict_credential(credential_id)
        log.info("credential %d revoked; evicted from the auth cache", credential_id)

    def _store(self, digest: bytes, principal: Principal) -> None:
        self._entries[digest] = _CacheEntry(principal, time.monotonic())
        self._by_credential.setdefault(principal.credential_id, set()).add(digest)
        while len(self._entries) > self._max_entries:
            oldest, entry = self._entries.popitem(last=False)
            self._unindex(oldest, entry)

    def _drop(self, digest: bytes) -> None:
        entry = self._entries.pop(digest, None)
        if entry is not None:
            self._unindex(digest, entry)

    def _unindex(self, digest: bytes, entry: _CacheEntry) -> None:
        credential_id = entry.principal.credential_id
        digests = self._by_credential.get(credential_id)
        if digests is not None:
            digests.discard(digest)
            if not digests:
                del self._by_credential[credential_id]
