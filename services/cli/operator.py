"""Operator commands that talk to the registry over gRPC: users and API keys."""

from __future__ import annotations

import datetime as dt
import getpass
import secrets
import sys

import grpc

from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1.registry_pb2_grpc import AccountsStub


def _when(ts: int) -> str:
    if not ts:
        return "never"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _user(accounts: AccountsStub, username: str) -> pb.User:
    return accounts.GetUser(pb.GetUserRequest(username=username))


def create_user(registry: str, username: str, password: str | None, display_name: str) -> int:
    if password is None:
        if sys.stdin.isatty():
            password = getpass.getpass(f"password for {username}: ")
        else:
            password = secrets.token_urlsafe(12)
            print(f"generated password: {password}")
    with grpc.insecure_channel(registry) as channel:
        user = AccountsStub(channel).CreateUser(
            pb.CreateUserRequest(username=username, password=password, display_name=display_name)
        )
    print(f"created user {user.username} (id {user.id})")
    return 0


def delete_user(registry: str, username: str) -> int:
    with grpc.insecure_channel(registry) as channel:
        accounts = AccountsStub(channel)
        user = _user(accounts, username)
        deleted = accounts.DeleteUser(pb.DeleteUserRequest(user_id=user.id))
    print(
        f"deleted user {user.username} (id {user.id}); "
        f"{deleted.revoked_credentials} API keys and sessions revoked"
    )
    return 0


def create_key(registry: str, username: str, name: str, expires_in_days: float) -> int:
    with grpc.insecure_channel(registry) as channel:
        accounts = AccountsStub(channel)
        user = _user(accounts, username)
        created = accounts.CreateApiKey(
            pb.CreateApiKeyRequest(
                user_id=user.id, name=name, expires_in=int(expires_in_days * 86400)
            )
        )
    print(f"key id:  {created.key.id}")
    print(f"expires: {_when(created.key.expires_at)}")
    print(f"token:   {created.token}")
    print("The token is shown only once.", file=sys.stderr)
    return 0


def list_keys(registry: str, username: str) -> int:
    with grpc.insecure_channel(registry) as channel:
        accounts = AccountsStub(channel)
        user = _user(accounts, username)
        page = 1
        # Revoked keys are gone from the list: revoking is deleting, as in the HTTP API.
        print(f"{'id':<18} {'name':<20} {'prefix':<14} {'expires':<22} last used")
        while True:
            reply = accounts.ListApiKeys(
                pb.ListApiKeysRequest(user_id=user.id, page_size=100, page_num=page)
            )
            for key in reply.keys:
                print(
                    f"{key.id:<18} {key.name[:20]:<20} {key.prefix:<14} "
                    f"{_when(key.expires_at):<22} {_when(key.last_used_at)}"
                )
            if page * 100 >= reply.total or not reply.keys:
                return 0
            page += 1


def revoke_key(registry: str, username: str, key_id: int) -> int:
    with grpc.insecure_channel(registry) as channel:
        accounts = AccountsStub(channel)
        user = _user(accounts, username)
        accounts.RevokeApiKey(pb.ApiKeyRef(user_id=user.id, key_id=key_id))
    print(f"revoked key {key_id}")
    return 0


def set_limits(registry: str, nats_url: str, username: str, limits: dict[str, int]) -> int:
    """Per-account rate limits; every edge picks them up at once. Empty = back to defaults."""
    import asyncio

    import nats

    from cozeplus.nats_connection import server_list
    from services.edge.rate_limit import set_override

    with grpc.insecure_channel(registry) as channel:
        user = _user(AccountsStub(channel), username)

    async def write() -> None:
        nc = await nats.connect(
            servers=server_list(nats_url), connect_timeout=3, max_reconnect_attempts=0
        )
        try:
            await set_override(nc.jetstream(), user.id, limits)
        finally:
            await nc.close()

    asyncio.run(write())
    shown = ", ".join(f"{k}={v}/window" for k, v in limits.items()) or "the defaults"
    print(f"rate limits of {username}: {shown}")
    return 0
