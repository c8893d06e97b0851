"""Credentials: API keys, session cookies, CSRF, expiry and revocation across edge replicas."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import Account
from tests.edge.conftest import TRUSTED_ORIGIN
from tests.edge.envelope import assert_error, data_of

CREATE_PAT = "/api/permission_api/pat/create_personal_access_token_and_permission"
DELETE_PAT = "/api/permission_api/pat/delete_personal_access_token_and_permission"


def register(http: httpx.Client) -> dict[str, Any]:
    username = f"web_{secrets.token_hex(5)}"
    data: dict[str, Any] = data_of(
        http.post(
            "/api/passport/register",
            json={"username": username, "password": "a long enough password", "display_name": "W"},
        )
    )
    return data


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_until_rejected(http: httpx.Client, token: str, deadline: float) -> None:
    """Polls until `token` is refused, failing if it is still accepted at `deadline`
    (a time.monotonic() value)."""
    while True:
        response = http.get("/api/passport/me", headers=bearer(token))
        if response.status_code == 401:
            assert_error(response, 401)
            return
        assert response.status_code == 200, response.text
        assert time.monotonic() < deadline, f"{http.base_url} still accepts a revoked key"
        time.sleep(0.02)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "pat_without_scheme"},
        {"Authorization": "Bearer pat_not_a_real_key"},
        {"Authorization": "Bearer " + "x" * 5000},
        {"Cookie": "session_key=not-a-session"},
    ],
)
def test_missing_or_invalid_credentials_are_401(edge_url: str, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=edge_url, headers=headers) as http:
        for response in (
            http.get("/api/passport/me"),
            http.get("/v1/bots"),
            http.post("/api/draftbot/create", json={"name": "x"}),
            http.get("/v1/bot/get_online_info", params={"bot_id": 1}),
        ):
            assert_error(response, 401)


def test_api_key_identifies_its_account(client: httpx.Client, account: Account) -> None:
    me = data_of(client.get("/api/passport/me"))
    assert me == {
        "user_id": account.user_id,
        "username": account.username,
        "display_name": me["display_name"],
        "created_at": me["created_at"],
        "auth_kind": "api_key",
    }


def test_register_login_cookie_and_logout(anon: httpx.Client) -> None:
    registered = anon.post(
        "/api/passport/register",
        json={"username": f"u_{secrets.token_hex(5)}", "password": "a long enough password"},
    )
    session = data_of(registered)
    cookie = registered.headers["set-cookie"]
    assert cookie.startswith("session_key=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert "secure" not in attributes
    max_age = next(int(a.split("=")[1]) for a in attributes if a.startswith("max-age="))
    assert abs(max_age - (session["expires_at"] - time.time())) < 5

    me = data_of(anon.get("/api/passport/me"))
    assert me["user_id"] == session["user"]["user_id"]
    assert me["auth_kind"] == "session"

    # The cookie works on every route, bot routes included.
    bot = data_of(anon.post("/api/draftbot/create", json={"name": "cookie bot"}))
    assert type(bot["bot_id"]) is int

    assert data_of(anon.post("/api/passport/logout")) == {}
    assert_error(anon.get("/api/passport/me"), 401)


def test_login_again_and_wrong_password(anon: httpx.Client, edge_url: str) -> None:
    username = f"u_{secrets.token_hex(5)}"
    data_of(
        anon.post("/api/passport/register", json={"username": username, "password": "pw-1234567"})
    )
    with httpx.Client(base_url=edge_url) as browser:
        logged_in = data_of(
            browser.post(
                "/api/passport/login", json={"username": username, "password": "pw-1234567"}
            )
        )
        assert logged_in["user"]["username"] == username
        assert data_of(browser.get("/api/passport/me"))["username"] == username
    assert_error(
        anon.post("/api/passport/login", json={"username": username, "password": "wrong-pass"}), 401
    )
    assert_error(
        anon.post("/api/passport/login", json={"username": "nobody_here", "password": "whatever"}),
        401,
    )
    assert_error(
        anon.post("/api/passport/register", json={"username": username, "password": "pw-7654321"}),
        409,
    )
    assert_error(anon.post("/api/passport/login", json={"username": username}), 400, "password")


def test_logout_with_an_api_key_is_refused(client: httpx.Client) -> None:
    assert_error(client.post("/api/passport/logout"), 400, "session")
    data_of(client.get("/api/passport/me"))


def test_csrf_cookie_post_from_another_origin_is_refused(anon: httpx.Client, edge_url: str) -> None:
    register(anon)
    before = data_of(anon.get("/v1/bots", params={"publish_status": "all"}))["total"]
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/page"},
        {"Origin": edge_url.replace("127.0.0.1", "localhost")},
    ):
        assert_error(
            anon.post("/api/draftbot/create", json={"name": "csrf"}, headers=headers),
            403,
            "cross-site",
        )
    assert data_of(anon.get("/v1/bots", params={"publish_status": "all"}))["total"] == before

    # Same origin, no Origin at all, or a cross-origin GET: accepted.
    data_of(anon.post("/api/draftbot/create", json={"name": "ok"}, headers={"Origin": edge_url}))
    data_of(anon.post("/api/draftbot/create", json={"name": "ok", "x": 1}))
    data_of(anon.get("/api/passport/me", headers={"Origin": "https://evil.example"}))
    # A login forced by another site is refused too.
    assert_error(
        anon.post(
            "/api/passport/login",
            json={"username": "x", "password": "y"},
            headers={"Origin": "https://evil.example"},
        ),
        403,
    )


def test_bearer_post_from_another_origin_is_fine(client: httpx.Client) -> None:
    data_of(
        client.post(
            "/api/draftbot/create",
            json={"name": "from a page"},
            headers={"Origin": "https://evil.example"},
        )
    )


def test_secure_cookie_and_trusted_origin_on_a_configured_edge(second_edge_url: str) -> None:
    with httpx.Client(base_url=second_edge_url) as browser:
        registered = browser.post(
            "/api/passport/register",
            json={"username": f"u_{secrets.token_hex(5)}", "password": "a long enough password"},
        )
        data_of(registered)
        assert "secure" in registered.headers["set-cookie"].lower()
        # httpx holds Secure cookies back from http:// URLs; send it by hand.
        session_key = registered.cookies["session_key"]
        cookie = {"Cookie": f"session_key={session_key}"}
        data_of(
            browser.post(
                "/api/draftbot/create",
                json={"name": "console"},
                headers={**cookie, "Origin": TRUSTED_ORIGIN},
            )
        )
        assert_error(
            browser.post(
                "/api/draftbot/create",
                json={"name": "evil"},
                headers={**cookie, "Origin": "https://evil.example"},
            ),
            403,
        )


def test_expired_api_key_is_refused(edge_url: str, make_account: Callable[..., Account]) -> None:
    account = make_account(expires_in=2)
    with httpx.Client(base_url=edge_url, headers=account.headers) as http:
        data_of(http.get("/api/passport/me"))  # now cached by the edge
        time.sleep(3)
        assert_error(http.get("/api/passport/me"), 401)
        assert_error(http.post("/api/draftbot/create", json={"name": "late"}), 401)


def test_key_created_with_expire_at_stops_working(client: httpx.Client, edge_url: str) -> None:
    expire_at = int(time.time()) + 2
    created = data_of(client.post(CREATE_PAT, json={"name": "short", "expire_at": expire_at}))
    assert created["personal_access_token"]["expire_at"] == expire_at
    with httpx.Client(base_url=edge_url, headers=bearer(created["token"])) as http:
        data_of(http.get("/api/passport/me"))
        time.sleep(max(0.0, expire_at - time.time()) + 1)
        assert_error(http.get("/api/passport/me"), 401)


def test_revoked_key_is_refused_within_a_second_on_every_edge(
    client: httpx.Client, edge_url: str, second_edge_url: str
) -> None:
    created = data_of(client.post(CREATE_PAT, json={"name": "to revoke"}))
    token = created["token"]
    with (
        httpx.Client(base_url=edge_url) as edge_a,
        httpx.Client(base_url=second_edge_url) as edge_b,
    ):
        # Both edges have the key in their auth cache (TTL 30 s) before it is revoked.
        for http in (edge_a, edge_b):
            for _ in range(3):
                data_of(http.get("/api/passport/me", headers=bearer(token)))

        data_of(client.post(DELETE_PAT, json={"id": created["personal_access_token"]["id"]}))
        deadline = time.monotonic() + 1.0
        wait_until_rejected(edge_a, token, deadline)
        wait_until_rejected(edge_b, token, deadline)
        assert_error(
            edge_b.post("/api/draftbot/create", json={"name": "x"}, headers=bearer(token)), 401
        )
