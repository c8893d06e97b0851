"""Accounts over gRPC: users, sessions, API keys, authentication and revocation broadcasts."""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING

import grpc
import orjson
import pytest
from nats.aio.subscription import Subscription

from cozeplus.rpc.v1 import registry_pb2 as pb
from tests.registry.rpc_expect import expect_status

if TYPE_CHECKING:
    from cozeplus.rpc.v1.registry_pb2_grpc import AccountsAsyncStub

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
PASSWORD = "correct horse"


def new_username() -> str:
    return f"user_{secrets.token_hex(5)}"


async def create_user(rpc: AccountsAsyncStub, username: str | None = None) -> pb.User:
    user: pb.User = await rpc.CreateUser(
        pb.CreateUserRequest(username=username or new_username(), password=PASSWORD)
    )
    return user


async def next_revoked(revocations: Subscription, credential_id: int) -> None:
    """Wait for the broadcast about `credential_id`, skipping other tests' broadcasts."""
    while True:
        message = await revocations.next_msg(timeout=5)
        if orjson.loads(message.data) == {"credential_id": credential_id}:
            return


# ------------------------------------------------------------------ users


async def test_create_and_get_user(accounts_rpc: AccountsAsyncStub) -> None:
    username = new_username()
    user = await accounts_rpc.CreateUser(
        pb.CreateUserRequest(username=username, password=PASSWORD, display_name="Ada")
    )
    assert (user.username, user.display_name) == (username, "Ada")
    assert 0 < user.id < 2**53
    assert user.created_at > 0

    assert await accounts_rpc.GetUser(pb.GetUserRequest(id=user.id)) == user
    assert await accounts_rpc.GetUser(pb.GetUserRequest(username=username.upper())) == user

    unnamed = await create_user(accounts_rpc)
    assert unnamed.display_name == unnamed.username


async def test_usernames_are_unique_ignoring_case(accounts_rpc: AccountsAsyncStub) -> None:
    username = new_username()
    await create_user(accounts_rpc, username)

    for taken in (username, username.upper()):
        await expect_status(
            accounts_rpc.CreateUser(pb.CreateUserRequest(username=taken, password=PASSWORD)),
            grpc.StatusCode.ALREADY_EXISTS,
            "taken",
        )


@pytest.mark.parametrize(
    ("username", "password", "message_part"),
    [
        ("ab", PASSWORD, "username"),
        ("a" * 65, PASSWORD, "username"),
        ("with space", PASSWORD, "username"),
        ("ünïcode", PASSWORD, "username"),
        ("fine_name", "short", "password"),
    ],
)
async def test_invalid_user_is_rejected(
    accounts_rpc: AccountsAsyncStub, username: str, password: str, message_part: str
) -> None:
    await expect_status(
        accounts_rpc.CreateUser(pb.CreateUserRequest(username=username, password=password)),
        INVALID,
        message_part,
    )


async def test_get_user_errors(accounts_rpc: AccountsAsyncStub) -> None:
    await expect_status(accounts_rpc.GetUser(pb.GetUserRequest()), INVALID)
    await expect_status(accounts_rpc.GetUser(pb.GetUserRequest(id=12345)), NOT_FOUND)
    await expect_status(accounts_rpc.GetUser(pb.GetUserRequest(username=new_username())), NOT_FOUND)


# --------------------------------------------------------------- sessions


async def test_login_authenticate_logout(
    accounts_rpc: AccountsAsyncStub, revocations: Subscription
) -> None:
    user = await create_user(accounts_rpc)

    login = await accounts_rpc.Login(
        pb.LoginRequest(username=user.username.upper(), password=PASSWORD)
    )
    assert login.user == user
    assert len(login.session_key) >= 40
    assert login.expires_at > user.created_at

    principal = await accounts_rpc.Authenticate(pb.AuthenticateRequest(token=login.session_key))
    assert principal.user == user
    assert principal.kind == "session"
    assert principal.expires_at == login.expires_at
    session_id = principal.credential_id

    assert await accounts_rpc.Logout(pb.SessionRef(session_key=login.session_key)) == pb.Empty()
    await next_revoked(revocations, session_id)
    await expect_status(
        accounts_rpc.Authenticate(pb.AuthenticateRequest(token=login.session_key)),
        UNAUTHENTICATED,
    )
    # Logging out twice is harmless.
    await accounts_rpc.Logout(pb.SessionRef(session_key=login.session_key))


async def test_wrong_username_or_password_get_the_same_answer(
    accounts_rpc: AccountsAsyncStub,
) -> None:
    user = await create_user(accounts_rpc)

    wrong_password = await expect_status(
        accounts_rpc.Login(pb.LoginRequest(username=user.username, password="not it!!")),
        UNAUTHENTICATED,
    )
    unknown_user = await expect_status(
        accounts_rpc.Login(pb.LoginRequest(username=new_username(), password=PASSWORD)),
        UNAUTHENTICATED,
    )
    assert wrong_password == unknown_user == "invalid username or password"


@pytest.mark.parametrize("token", ["", "pat_nonsense", "not-a-session"])
async def test_unknown_tokens_are_unauthenticated(
    accounts_rpc: AccountsAsyncStub, token: str
) -> None:
    await expect_status(
        accounts_rpc.Authenticate(pb.AuthenticateRequest(token=token)), UNAUTHENTICATED
    )


# --------------------------------------------------------------- API keys


async def test_api_key_lifecycle(
    accounts_rpc: AccountsAsyncStub, revocations: Subscription
) -> None:
    user = await create_user(accounts_rpc)

    created = await accounts_rpc.CreateApiKey(
        pb.CreateApiKeyRequest(user_id=user.id, name="ci", expires_in=3600)
    )
    key, token = created.key, created.token
    assert token.startswith("pat_")
    assert len(token) > 40
    assert key.prefix == token[:12]
    assert (key.user_id, key.name, key.revoked) == (user.id, "ci", False)
    assert key.expires_at == key.created_at + 3600
    assert key.last_used_at == 0

    principal = await accounts_rpc.Authenticate(pb.AuthenticateRequest(token=token))
    assert (principal.kind, principal.credential_id) == ("api_key", key.id)
    assert principal.user == user
    assert principal.expires_at == key.expires_at
    used = await accounts_rpc.GetApiKey(pb.ApiKeyRef(user_id=user.id, key_id=key.id))
    assert used.last_used_at >= key.created_at

    renamed = await accounts_rpc.UpdateApiKey(
        pb.UpdateApiKeyRequest(user_id=user.id, key_id=key.id, name="  deploy  ")
    )
    assert renamed.name == "deploy"
    await expect_status(
        accounts_rpc.UpdateApiKey(pb.UpdateApiKeyRequest(user_id=user.id, key_id=key.id)),
        INVALID,
        "name",
    )

    assert await accounts_rpc.RevokeApiKey(pb.ApiKeyRef(user_id=user.id, key_id=key.id)) == (
        pb.Empty()
    )
    await next_revoked(revocations, key.id)
    await expect_status(
        accounts_rpc.Authenticate(pb.AuthenticateRequest(token=token)), UNAUTHENTICATED
    )
    revoked = await accounts_rpc.GetApiKey(pb.ApiKeyRef(user_id=user.id, key_id=key.id))
    assert revoked.revoked
    listed = await accounts_rpc.ListApiKeys(pb.ListApiKeysRequest(user_id=user.id))
    assert listed.total == 0, "revoked keys are deleted from the user's point of view"
    await expect_status(
        accounts_rpc.UpdateApiKey(pb.UpdateApiKeyRequest(user_id=user.id, key_id=key.id, name="x")),
        grpc.StatusCode.FAILED_PRECONDITION,
    )


async def test_list_api_keys_pages_newest_first(accounts_rpc: AccountsAsyncStub) -> None:
    user = await create_user(accounts_rpc)
    keys = [
        (await accounts_rpc.CreateApiKey(pb.CreateApiKeyRequest(user_id=user.id, name=f"k{i}"))).key
        for i in range(3)
    ]

    first = await accounts_rpc.ListApiKeys(
        pb.ListApiKeysRequest(user_id=user.id, page_size=2, page_num=1)
    )
    second = await accounts_rpc.ListApiKeys(
        pb.ListApiKeysRequest(user_id=user.id, page_size=2, page_num=2)
    )

    assert [k.id for k in [*first.keys, *second.keys]] == [k.id for k in reversed(keys)]
    assert first.total == second.total == 3
    assert all(k.expires_at == 0 for k in first.keys), "expires_in 0 means never"


async def test_expired_api_key_is_rejected(accounts_rpc: AccountsAsyncStub) -> None:
    user = await create_user(accounts_rpc)
    created = await accounts_rpc.CreateApiKey(
        pb.CreateApiKeyRequest(user_id=user.id, name="brief", expires_in=1)
    )

    await asyncio.sleep(2.1)

    await expect_status(
        accounts_rpc.Authenticate(pb.AuthenticateRequest(token=created.token)),
        UNAUTHENTICATED,
        "expired",
    )


async def test_another_users_key_is_not_found(accounts_rpc: AccountsAsyncStub) -> None:
    owner = await create_user(accounts_rpc)
    intruder = await create_user(accounts_rpc)
    key = (
        await accounts_rpc.CreateApiKey(pb.CreateApiKeyRequest(user_id=owner.id, name="mine"))
    ).key

    ref = pb.ApiKeyRef(user_id=intruder.id, key_id=key.id)
    await expect_status(accounts_rpc.GetApiKey(ref), NOT_FOUND)
    await expect_status(accounts_rpc.RevokeApiKey(ref), NOT_FOUND)
    await expect_status(
        accounts_rpc.UpdateApiKey(
            pb.UpdateApiKeyRequest(user_id=intruder.id, key_id=key.id, name="stolen")
        ),
        NOT_FOUND,
    )
    listed = await accounts_rpc.ListApiKeys(pb.ListApiKeysRequest(user_id=intruder.id))
    assert listed.total == 0
    still = await accounts_rpc.GetApiKey(pb.ApiKeyRef(user_id=owner.id, key_id=key.id))
    assert (still.name, still.revoked) == ("mine", False)


async def test_invalid_api_key_requests(accounts_rpc: AccountsAsyncStub) -> None:
    user = await create_user(accounts_rpc)

    await expect_status(
        accounts_rpc.CreateApiKey(pb.CreateApiKeyRequest(user_id=user.id, name=" ")),
        INVALID,
        "name",
    )
    await expect_status(
        accounts_rpc.CreateApiKey(pb.CreateApiKeyRequest(user_id=user.id, name="k", expires_in=-1)),
        INVALID,
        "expires_in",
    )
    await expect_status(
        accounts_rpc.CreateApiKey(pb.CreateApiKeyRequest(user_id=1, name="k")),
        NOT_FOUND,
        "user",
    )
    await expect_status(
        accounts_rpc.CreateApiKey(pb.CreateApiKeyRequest(name="k")), INVALID, "user_id"
    )


# ------------------------------------------------------------ deleting users


async def test_deleting_a_user_revokes_its_credentials_and_hides_it(
    accounts_rpc: AccountsAsyncStub, revocations: Subscription
) -> None:
    user = await create_user(accounts_rpc)
    login = await accounts_rpc.Login(pb.LoginRequest(username=user.username, password=PASSWORD))
    session = await accounts_rpc.Authenticate(pb.AuthenticateRequest(token=login.session_key))
    key = await accounts_rpc.CreateApiKey(pb.CreateApiKeyRequest(user_id=user.id, name="a"))
    # Revoked before the deletion: not the deletion's to revoke (announcing it again is
    # harmless, and within the same second unavoidable).
    old = await accounts_rpc.CreateApiKey(pb.CreateApiKeyRequest(user_id=user.id, name="b"))
    await accounts_rpc.RevokeApiKey(pb.ApiKeyRef(user_id=user.id, key_id=old.key.id))
    await next_revoked(revocations, old.key.id)
    bystander = await create_user(accounts_rpc)
    kept = await accounts_rpc.CreateApiKey(pb.CreateApiKeyRequest(user_id=bystander.id, name="c"))

    deleted = await accounts_rpc.DeleteUser(pb.DeleteUserRequest(user_id=user.id))
    assert deleted.revoked_credentials == 2
    await next_revoked(revocations, session.credential_id)
    await next_revoked(revocations, key.key.id)

    for token in (login.session_key, key.token, old.token):
        await expect_status(
            accounts_rpc.Authenticate(pb.AuthenticateRequest(token=token)), UNAUTHENTICATED
        )
    await expect_status(
        accounts_rpc.Login(pb.LoginRequest(username=user.username, password=PASSWORD)),
        UNAUTHENTICATED,
        "invalid username or password",
    )
    await expect_status(accounts_rpc.GetUser(pb.GetUserRequest(id=user.id)), NOT_FOUND)
    await expect_status(accounts_rpc.GetUser(pb.GetUserRequest(username=user.username)), NOT_FOUND)
    await expect_status(
        accounts_rpc.CreateApiKey(pb.CreateApiKeyRequest(user_id=user.id, name="late")), NOT_FOUND
    )
    # The name stays taken: nobody can register as the deleted account.
    await expect_status(
        accounts_rpc.CreateUser(pb.CreateUserRequest(username=user.username, password=PASSWORD)),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    # Other accounts are untouched.
    principal = await accounts_rpc.Authenticate(pb.AuthenticateRequest(token=kept.token))
    assert principal.user == bystander

    # Idempotent, re-announcing the credentials for a caller whose broadcast failed.
    again = await accounts_rpc.DeleteUser(pb.DeleteUserRequest(user_id=user.id))
    assert again.revoked_credentials == 0
    await next_revoked(revocations, session.credential_id)
    await next_revoked(revocations, key.key.id)


async def test_deleting_an_unknown_user(accounts_rpc: AccountsAsyncStub) -> None:
    await expect_status(accounts_rpc.DeleteUser(pb.DeleteUserRequest(user_id=0)), INVALID)
    await expect_status(
        accounts_rpc.DeleteUser(pb.DeleteUserRequest(user_id=2**52 + 12345)), NOT_FOUND
    )
