"""The operator CLI against a real registry process."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest

from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1.registry_pb2_grpc import AccountsStub
from cozeplus.service_auth import service_channel


def cozeplus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _value(output: str, label: str) -> str:
    return next(
        line.split(":", 1)[1].strip() for line in output.splitlines() if line.startswith(label)
    )


def test_users_and_keys_lifecycle(registry_addr: str) -> None:
    created = cozeplus(
        "users", "create", "cli_operator", "--password", "s3cret-pass", "--registry", registry_addr
    )
    assert created.returncode == 0, created.stderr
    assert "created user cli_operator" in created.stdout

    duplicate = cozeplus(
        "users", "create", "cli_operator", "--password", "x" * 10, "--registry", registry_addr
    )
    assert duplicate.returncode == 1
    assert "already_exists" in duplicate.stderr

    key = cozeplus(
        "keys", "create", "--user", "cli_operator", "--name", "ci", "--registry", registry_addr
    )
    assert key.returncode == 0, key.stderr
    token, key_id = _value(key.stdout, "token"), _value(key.stdout, "key id")
    assert token.startswith("pat_") and "shown only once" in key.stderr

    with service_channel(registry_addr) as channel:
        accounts = AccountsStub(channel)
        principal = accounts.Authenticate(pb.AuthenticateRequest(token=token))
        assert principal.user.username == "cli_operator"

        listed = cozeplus("keys", "list", "--user", "cli_operator", "--registry", registry_addr)
        assert listed.returncode == 0, listed.stderr
        assert key_id in listed.stdout and token not in listed.stdout

        revoked = cozeplus(
            "keys", "revoke", key_id, "--user", "cli_operator", "--registry", registry_addr
        )
        assert revoked.returncode == 0, revoked.stderr
        with pytest.raises(grpc.RpcError) as rejected:
            accounts.Authenticate(pb.AuthenticateRequest(token=token))
        assert rejected.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (
        key_id
        not in cozeplus(
            "keys", "list", "--user", "cli_operator", "--registry", registry_addr
        ).stdout
    )


def test_expiring_key_shows_its_expiry(registry_addr: str) -> None:
    cozeplus(
        "users", "create", "cli_expiry", "--password", "s3cret-pass", "--registry", registry_addr
    )
    key = cozeplus(
        "keys",
        "create",
        "--user",
        "cli_expiry",
        "--expires-in-days",
        "1",
        "--registry",
        registry_addr,
    )
    assert key.returncode == 0, key.stderr
    assert _value(key.stdout, "expires") != "never"


def test_unknown_user_is_a_clear_error(registry_addr: str) -> None:
    result = cozeplus("keys", "create", "--user", "nobody_here", "--registry", registry_addr)
    assert result.returncode == 1
    assert "not_found" in result.stderr


def test_unreachable_registry_is_a_clear_error() -> None:
    result = cozeplus("keys", "list", "--registry", "127.0.0.1:1")
    assert result.returncode == 1
    assert "unavailable" in result.stderr


async def test_limits_are_written_for_every_edge(registry_addr: str, nats_url: str) -> None:
    import nats
    import orjson
    from nats.js.errors import KeyNotFoundError

    from services.edge.rate_limit import OVERRIDES_BUCKET

    cozeplus(
        "users", "create", "cli_limits", "--password", "s3cret-pass", "--registry", registry_addr
    )
    result = cozeplus(
        "limits",
        "--user",
        "cli_limits",
        "--chat",
        "120",
        "--bot-info",
        "7",
        "--registry",
        registry_addr,
        "--nats",
        nats_url,
    )
    assert result.returncode == 0, result.stderr
    with service_channel(registry_addr) as channel:
        user = AccountsStub(channel).GetUser(pb.GetUserRequest(username="cli_limits"))
    nc = await nats.connect(nats_url)
    try:
        bucket = await nc.jetstream().key_value(OVERRIDES_BUCKET)
        entry = await bucket.get(str(user.id))
        assert orjson.loads(entry.value or b"{}") == {"chat": 120, "bot_info": 7}
        reset = cozeplus(
            "limits",
            "--user",
            "cli_limits",
            "--reset",
            "--registry",
            registry_addr,
            "--nats",
            nats_url,
        )
        assert reset.returncode == 0, reset.stderr
        assert "the defaults" in reset.stdout
        with pytest.raises(KeyNotFoundError):
            await bucket.get(str(user.id))
    finally:
        await nc.close()

    assert cozeplus("limits", "--user", "cli_limits", "--registry", registry_addr).returncode == 2
