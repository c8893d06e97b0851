"""The operator CLI against a real registry process."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest

from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1.registry_pb2_grpc import AccountsStub


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

    with grpc.insecure_channel(registry_addr) as channel:
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
