"""An operator deletes an account (`cozeplus users delete`): within a second its API keys and
sessions are refused on every edge replica and every route, even where they were cached."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import httpx

from tests.conftest import Account
from tests.edge.envelope import assert_error, data_of


def refused_everywhere(http: httpx.Client, bot_id: int) -> None:
    for response in (
        http.get("/api/passport/me"),
        http.get(f"/v1/bots/{bot_id}"),
        http.post("/api/draftbot/create", json={"name": "after"}),
        http.post("/v3/chat", json={"bot_id": bot_id, "user_id": "u", "query": "q"}),
        http.post("/v1/conversation/create", json={}),
        http.get("/api/permission_api/pat/list_personal_access_tokens"),
    ):
        assert_error(response, 401)


def test_a_deleted_accounts_key_and_session_stop_working_within_a_second(
    edge_url: str,
    second_edge_url: str,
    registry_addr: str,
    make_account: Callable[..., Account],
) -> None:
    account, bystander = make_account(), make_account()
    with httpx.Client(base_url=edge_url, timeout=30) as browser:
        data_of(
            browser.post(
                "/api/passport/login",
                json={"username": account.username, "password": account.password},
            )
        )
        session_key = browser.cookies["session_key"]
    clients = [
        httpx.Client(base_url=url, headers=headers, timeout=30)
        for url in (edge_url, second_edge_url)
        for headers in (account.headers, {"Cookie": f"session_key={session_key}"})
    ]
    try:
        bot_id = data_of(clients[0].post("/api/draftbot/create", json={"name": "doomed"}))["bot_id"]
        # Every edge has both credentials in its auth cache (30 s) before the deletion.
        for http in clients:
            data_of(http.get("/api/passport/me"))

        deleted = subprocess.run(
            [sys.executable, "-m", "services", "users", "delete", account.username,
             "--registry", registry_addr],
            capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert deleted.returncode == 0, deleted.stderr
        assert f"deleted user {account.username}" in deleted.stdout
        assert "2 API keys and sessions revoked" in deleted.stdout

        deadline = time.monotonic() + 1.0
        for http in clients:
            while http.get("/api/passport/me").status_code != 401:
                assert time.monotonic() < deadline, f"{http.base_url} still accepts it"
                time.sleep(0.02)
        for http in clients:
            refused_everywhere(http, bot_id)
        # The password no longer logs in; other accounts are untouched.
        with httpx.Client(base_url=second_edge_url, timeout=30) as browser:
            login = {"username": account.username, "password": account.password}
            assert_error(browser.post("/api/passport/login", json=login), 401)
            data_of(browser.get("/api/passport/me", headers=bystander.headers))
        # Deleting it again finds no such user: a clear error, not a traceback.
        again = subprocess.run(
            [sys.executable, "-m", "services", "users", "delete", account.username,
             "--registry", registry_addr],
            capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert again.returncode == 1
        assert "not_found: user not found" in again.stderr
    finally:
        for http in clients:
            http.close()
