"""Bad input the fuzzers are unlikely to produce, by hand, over real HTTP: broken encodings,
absurd nesting, ids at and past the edges of int64, SQL and header injection attempts, forged
cookies, another account's session, cross-site requests, and oversized fields. Each gets its
envelope and status, and a read of the registry afterwards shows that nothing changed (bots,
versions, conversations, messages)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import grpc
import httpx
import pytest

from tests.conftest import Account
from tests.edge.conftest import StartEdge
from tests.edge.envelope import assert_error, data_of
from tests.edge.store import Store, registry_channel_sync, store_of

__all__ = ["registry_channel_sync"]  # the fixture, used by the tests below

JSON = {"content-type": "application/json"}
EVIL = {"Origin": "https://evil.example"}


@dataclass
class World:
    """An account with a bot published twice and a conversation with messages."""

    http: httpx.Client
    account: Account
    bot_id: int
    conversation_id: int
    message_id: int
    store: Store

    def unchanged_since(self, before: list[Any], what: str) -> None:
        assert self.store.snapshot() == before, f"the store changed after {what}"


def make_world(base_url: str, account: Account, channel: grpc.Channel) -> World:
    http = httpx.Client(base_url=base_url, headers=account.headers, timeout=30)
    bot_id = data_of(
        http.post("/api/draftbot/create", json={"name": "world", "model": "echo", "prompt": "p"})
    )["bot_id"]
    data_of(http.post("/api/draftbot/publish", json={"bot_id": bot_id}))
    data_of(http.post("/api/draftbot/update_display_info", json={"bot_id": bot_id, "name": "w2"}))
    data_of(http.post("/api/draftbot/publish", json={"bot_id": bot_id}))
    conversation = data_of(
        http.post(
            "/v1/conversation/create",
            json={
                "bot_id": bot_id,
                "name": "talk",
                "meta_data": {"k": "v"},
                "messages": [
                    {"role": "user", "content": "hello"},
                    {"role": "assistant", "content": "hi"},
                ],
            },
        )
    )
    message = data_of(
        http.post(
            "/v1/conversation/message/create",
            params={"conversation_id": conversation["id"]},
            json={"role": "user", "content": "one more"},
        )
    )
    store = store_of(channel, account.user_id)
    return World(http, account, bot_id, int(conversation["id"]), int(message["id"]), store)


@pytest.fixture
def world(edge_url: str, account: Account, registry_channel_sync: grpc.Channel) -> Iterator[World]:
    made = make_world(edge_url, account, registry_channel_sync)
    yield made
    made.http.close()


# --------------------------------------------------------------- encodings, nesting


def test_a_body_that_is_not_utf8_is_a_400(world: World) -> None:
    before = world.store.snapshot()
    body = b'{"name": "caf\xe9", "bot_id": 1, "role": "user", "content": "\xff"}'
    cid = world.conversation_id
    for path in (
        "/api/draftbot/create",
        "/v1/bot/update",
        "/v3/chat",
        "/v1/conversation/create",
        f"/v1/conversation/message/create?conversation_id={cid}",
        f"/v1/conversation/message/modify?conversation_id={cid}&message_id={world.message_id}",
    ):
        response = world.http.post(path, content=body, headers=JSON)
        assert_error(response, 400, "not valid UTF-8")
        world.unchanged_since(before, path)


def test_absurdly_nested_json_is_a_400(world: World) -> None:
    before = world.store.snapshot()
    for body in (
        b"[" * 100_000,
        b'{"name": "x", "description": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    ):
        response = world.http.post("/api/draftbot/create", content=body, headers=JSON)
        assert_error(response, 400, "nested too deeply")
        world.unchanged_since(before, f"{body[:20]!r}...")


@pytest.mark.parametrize(
    ("extra_params", "why"),
    [
        # Fine for Python's parser, too deep for the JSON the runners are sent.
        ({"deep": __import__("functools").reduce(lambda v, _: [v], range(300), 1)}, "nesting"),
        ({"big": 2**70}, "64-bit"),
    ],
)
def test_chat_options_the_runners_could_not_read_are_refused_before_anything_is_stored(
    world: World, extra_params: dict[str, Any], why: str
) -> None:
    before = world.store.snapshot()
    for options in ({"extra_params": extra_params}, {"parameters": extra_params}):
        body = {
            "bot_id": world.bot_id,
            "user_id": "u",
            "query": "q",
            "stream": True,
            **options,
        }
        response = world.http.post(
            "/v3/chat", params={"conversation_id": world.conversation_id}, json=body
        )
        assert_error(response, 400, next(iter(options)))
        world.unchanged_since(before, f"{why} in {next(iter(options))}")


# ---------------------------------------------------------------------------- ids

BAD_IDS: list[Any] = [
    2**63,
    2**64,
    str(2**63),
    "99999999999999999999",
    -1,
    "-1",
    0,
    "0",
    1.5,
    12.0,
    True,
    False,
    "1e3",
    " 12",
    "0x1f",
    "",
    None,
    [1],
]


@pytest.mark.parametrize("bad", BAD_IDS, ids=[repr(b) for b in BAD_IDS])
def test_ids_out_of_int64_or_of_the_wrong_type_are_400_on_every_kind_of_route(
    world: World, bad: Any
) -> None:
    before = world.store.snapshot()
    http, cid = world.http, world.conversation_id
    as_text = "" if bad is None else str(bad).lower() if isinstance(bad, bool) else str(bad)
    attempts: list[tuple[str, Callable[[], httpx.Response]]] = [
        (
            "bot_id",
            lambda: http.post("/v3/chat", json={"bot_id": bad, "user_id": "u", "query": "q"}),
        ),
        (
            "agent_id",
            lambda: http.post("/api/conversation/chat", json={"agent_id": bad, "query": "q"}),
        ),
        ("conversation_id", lambda: http.post("/v3/chat/cancel", json={"conversation_id": bad})),
        (
            "conversation_id",
            lambda: http.get("/v1/conversation/retrieve", params={"conversation_id": as_text}),
        ),
        (
            "message_id",
            lambda: http.get(
                "/v1/conversation/message/retrieve",
                params={"conversation_id": cid, "message_id": as_text},
            ),
        ),
        (
            "message_id",
            lambda: http.post(
                "/v1/conversation/message/delete",
                params={"conversation_id": cid, "message_id": as_text},
            ),
        ),
        (
            "chat_id",
            lambda: http.get(
                "/v3/chat/retrieve", params={"conversation_id": cid, "chat_id": as_text}
            ),
        ),
        ("bot_id", lambda: http.get("/v1/conversations", params={"bot_id": as_text})),
    ]
    if as_text:
        # In a path an empty id is another route; the rest must name the field.
        attempts += [
            (
                "conversation_id",
                lambda: http.put(f"/v1/conversations/{as_text}", json={"name": "x"}),
            ),
            ("conversation_id", lambda: http.delete(f"/v1/conversations/{as_text}")),
            ("conversation_id", lambda: http.post(f"/v1/conversations/{as_text}/clear")),
        ]
    for field, attempt in attempts:
        # (null in a body means absent: a required id is then missing, a 400 naming it too.)
        assert_error(attempt(), 400, field)
        world.unchanged_since(before, f"{field}={bad!r}")


# ------------------------------------------------------------------ injections

INJECTIONS = [
    "x'); DROP TABLE bots;--",
    "' OR '1'='1",
    '" OR ""="',
    "1; DELETE FROM users; --",
    "%' OR 1=1 --",
    "\\'; SELECT pg_sleep(5); --",
    "Robert'); DROP TABLE conversations; --",
]
CRLF = "a\r\nSet-Cookie: injected=1\r\nX-Injected: 1\r\n\r\n<html>"


def assert_no_injected_headers(response: httpx.Response) -> None:
    names = {name.lower() for name in response.headers}
    assert "x-injected" not in names and "set-cookie" not in names, response.headers


@pytest.mark.parametrize("text", [*INJECTIONS, CRLF], ids=[*INJECTIONS, "CRLF"])
def test_injection_strings_are_stored_verbatim_and_never_interpreted(
    world: World, make_account: Callable[..., Account], edge_url: str, text: str
) -> None:
    """Another account writes the strings everywhere it can; they read back byte for byte,
    no header appears, and the first account's data and login are untouched."""
    before = world.store.snapshot()
    attacker = make_account()
    with httpx.Client(base_url=edge_url, headers=attacker.headers, timeout=30) as http:
        created = http.post(
            "/api/draftbot/create",
            json={"name": text[:100], "description": text, "prompt": text},
        )
        assert_no_injected_headers(created)
        bot_id = data_of(created)["bot_id"]
        draft = data_of(http.get(f"/v1/bots/{bot_id}", params={"is_published": "false"}))
        assert (draft["name"], draft["description"], draft["prompt"]) == (text[:100], text, text)

        conversation = data_of(
            http.post(
                "/v1/conversation/create",
                json={"bot_id": bot_id, "name": text[:100], "meta_data": {"k": text[:512]}},
            )
        )
        read = data_of(
            http.get("/v1/conversation/retrieve", params={"conversation_id": conversation["id"]})
        )
        assert (read["name"], read["meta_data"]) == (text[:100], {"k": text[:512]})
        message = http.post(
            "/v1/conversation/message/create",
            params={"conversation_id": conversation["id"]},
            json={"role": "user", "content": text, "meta_data": {text[:64]: "v"}},
        )
        assert_no_injected_headers(message)
        stored = data_of(
            http.get(
                "/v1/conversation/message/retrieve",
                params={
                    "conversation_id": conversation["id"],
                    "message_id": data_of(message)["id"],
                },
            )
        )
        assert (stored["content"], stored["meta_data"]) == (text, {text[:64]: "v"})

        # As query parameters: a filter that matches nothing, and refused enum and id values.
        listed = http.get("/v1/conversations", params={"bot_id": bot_id, "user_id": text})
        assert_no_injected_headers(listed)
        assert data_of(listed)["conversations"] == []
        for response in (
            http.get("/v1/bots", params={"publish_status": text}),
            http.get("/v1/bot/get_online_info", params={"bot_id": text}),
            http.get(f"/v1/bots/{quote(text, safe='')}"),
        ):
            assert_no_injected_headers(response)
            assert response.status_code in (400, 404), response.text
            assert_error(response, response.status_code)

    world.unchanged_since(before, f"another account wrote {text!r}")
    data_of(world.http.get("/api/passport/me"))


# ---------------------------------------------------------- cookies and sessions


def register(base_url: str) -> tuple[httpx.Client, dict[str, Any]]:
    """A browser: registered, holding its session cookie."""
    browser = httpx.Client(base_url=base_url, timeout=30)
    session = data_of(
        browser.post(
            "/api/passport/register",
            json={"username": f"web_{secrets.token_hex(5)}", "password": "a long password"},
        )
    )
    return browser, session


@pytest.mark.parametrize(
    "cookie",
    [
        secrets.token_urlsafe(32),
        "a" * 43,
        "pat_" + secrets.token_urlsafe(36),
        "x" * 600,
        "' OR '1'='1",
        "%00",
    ],
    ids=["random", "key-shaped", "api-key-shaped", "oversized", "sql", "nul"],
)
def test_forged_session_cookies_are_refused(world: World, edge_url: str, cookie: str) -> None:
    before = world.store.snapshot()
    with httpx.Client(
        base_url=edge_url, headers={"Cookie": f"session_key={cookie}"}, timeout=30
    ) as forged:
        for response in (
            forged.get("/api/passport/me"),
            forged.get(f"/v1/bots/{world.bot_id}"),
            forged.post("/v3/chat", json={"bot_id": world.bot_id, "user_id": "u", "query": "q"}),
            forged.get(
                "/v1/conversation/retrieve", params={"conversation_id": world.conversation_id}
            ),
            forged.post("/api/draftbot/delete", json={"bot_id": world.bot_id}),
        ):
            assert_error(response, 401)
    world.unchanged_since(before, f"a forged cookie {cookie[:20]!r}")


def test_a_logged_out_session_is_refused(edge_url: str) -> None:
    browser, _ = register(edge_url)
    with closing(browser):
        session_key = browser.cookies["session_key"]
        data_of(browser.post("/api/passport/logout"))
        with httpx.Client(base_url=edge_url, timeout=30) as replay:
            replay.cookies.set("session_key", session_key)
            assert_error(replay.get("/api/passport/me"), 401)


def test_a_session_of_one_account_cannot_touch_another_accounts_bot(
    world: World, edge_url: str
) -> None:
    before = world.store.snapshot()
    browser, _ = register(edge_url)
    b, cid, mid = world.bot_id, world.conversation_id, world.message_id
    conv = {"conversation_id": cid}
    with closing(browser):
        attempts = [
            browser.post("/api/draftbot/update_display_info", json={"bot_id": b, "name": "mine"}),
            browser.post("/api/draftbot/publish", json={"bot_id": b}),
            browser.post("/api/draftbot/delete", json={"bot_id": b}),
            browser.post("/v1/bot/update", json={"bot_id": str(b), "prompt": "mine"}),
            browser.get(f"/v1/bots/{b}"),
            browser.get(f"/v1/bots/{b}", params={"is_published": "false"}),
            browser.get("/v1/bot/get_online_info", params={"bot_id": b}),
            browser.post("/v3/chat", json={"bot_id": b, "user_id": "u", "query": "q"}),
            browser.post("/api/conversation/chat", json={"agent_id": b, "query": "q"}),
            browser.get("/v1/conversation/retrieve", params=conv),
            browser.put(f"/v1/conversations/{cid}", json={"name": "mine"}),
            browser.post(f"/v1/conversations/{cid}/clear"),
            browser.delete(f"/v1/conversations/{cid}"),
            browser.post(
                "/v1/conversation/message/create",
                params=conv,
                json={"role": "user", "content": "x"},
            ),
            browser.get("/v1/conversation/message/list", params=conv),
            browser.get("/v1/conversation/message/retrieve", params={**conv, "message_id": mid}),
            browser.post(
                "/v1/conversation/message/modify",
                params={**conv, "message_id": mid},
                json={"content": "x"},
            ),
            browser.post("/v1/conversation/message/delete", params={**conv, "message_id": mid}),
            browser.post("/v3/chat/cancel", json=conv),
        ]
        for response in attempts:
            assert_error(response, 404)
            world.unchanged_since(before, f"{response.request.method} {response.request.url}")
        # Nor can it list the conversations of that bot.
        assert_error(browser.get("/v1/conversations", params={"bot_id": b}), 404)


def test_cookie_changes_from_another_origin_are_refused_on_chat_and_conversation_routes(
    edge_url: str, registry_channel_sync: grpc.Channel
) -> None:
    browser, session = register(edge_url)
    with closing(browser):
        bot_id = data_of(
            browser.post("/api/draftbot/create", json={"name": "mine", "model": "echo"})
        )["bot_id"]
        data_of(browser.post("/api/draftbot/publish", json={"bot_id": bot_id}))
        conversation = data_of(
            browser.post(
                "/v1/conversation/create",
                json={"bot_id": bot_id, "messages": [{"role": "user", "content": "hi"}]},
            )
        )
        cid = conversation["id"]
        listed = browser.get("/v1/conversation/message/list", params={"conversation_id": cid})
        message_id = listed.json()["data"][0]["id"]
        store = store_of(registry_channel_sync, session["user"]["user_id"])
        before = store.snapshot()
        conv = {"conversation_id": cid}
        forged = [
            browser.post(
                "/v3/chat",
                json={"bot_id": bot_id, "user_id": "u", "query": "q", "stream": True},
                headers=EVIL,
            ),
            browser.post(
                "/api/conversation/chat", json={"agent_id": bot_id, "query": "q"}, headers=EVIL
            ),
            browser.post("/v3/chat/cancel", json=conv, headers=EVIL),
            browser.post("/v1/conversation/create", json={"bot_id": bot_id}, headers=EVIL),
            browser.put(f"/v1/conversations/{cid}", json={"name": "x"}, headers=EVIL),
            browser.delete(f"/v1/conversations/{cid}", headers=EVIL),
            browser.post(f"/v1/conversations/{cid}/clear", headers=EVIL),
            browser.post(
                "/v1/conversation/message/create",
                params=conv,
                json={"role": "user", "content": "x"},
                headers=EVIL,
            ),
            browser.post(
                "/v1/conversation/message/modify",
                params={**conv, "message_id": message_id},
                json={"content": "x"},
                headers=EVIL,
            ),
            browser.post(
                "/v1/conversation/message/delete",
                params={**conv, "message_id": message_id},
                headers=EVIL,
            ),
            browser.post("/v1/conversation/message/list", params=conv, headers=EVIL),
            browser.post("/v3/chat/retrieve", params={**conv, "chat_id": 1}, headers=EVIL),
            browser.post(
                "/v1/bot/publish",
                json={"bot_id": bot_id},
                headers={"Referer": "https://evil.example/x"},
            ),
        ]
        for response in forged:
            assert_error(response, 403, "cross-site")
            assert store.snapshot() == before, f"changed by {response.request.url}"
        # Reading from another origin is not a change: allowed (CORS keeps the answer from
        # the foreign page).
        data_of(browser.get("/v1/conversation/retrieve", params=conv, headers=EVIL))


# ------------------------------------------------------------------ size limits


def test_default_request_limits_name_the_field(world: World) -> None:
    before = world.store.snapshot()
    http, cid, mid = world.http, world.conversation_id, world.message_id
    chat = {"bot_id": world.bot_id, "user_id": "u", "stream": True}

    def message(content: str = "x", **extra: Any) -> dict[str, Any]:
        return {"role": "user", "content": content, **extra}

    cases: list[tuple[str, httpx.Response]] = [
        (
            "additional_messages",
            http.post("/v3/chat", json={**chat, "additional_messages": [message()] * 101}),
        ),
        (
            "additional_messages",
            http.post(
                "/v3/chat", json={**chat, "additional_messages": [message()] * 100, "query": "q"}
            ),
        ),
        (
            "additional_messages[1].content",
            http.post(
                "/v3/chat",
                json={**chat, "additional_messages": [message(), message("x" * 100_001)]},
            ),
        ),
        ("query", http.post("/v3/chat", json={**chat, "query": "x" * 100_001})),
        (
            "query",
            http.post(
                "/api/conversation/chat", json={"agent_id": world.bot_id, "query": "x" * 100_001}
            ),
        ),
        (
            "meta_data",
            http.post(
                "/v3/chat",
                json={**chat, "query": "q", "meta_data": {f"k{i}": "v" for i in range(17)}},
            ),
        ),
        (
            "meta_data",
            http.post("/v3/chat", json={**chat, "query": "q", "meta_data": {"k" * 65: "v"}}),
        ),
        (
            "meta_data",
            http.post("/v3/chat", json={**chat, "query": "q", "meta_data": {"k": "v" * 513}}),
        ),
        (
            "additional_messages[0].meta_data",
            http.post(
                "/v3/chat", json={**chat, "additional_messages": [message(meta_data={"": "v"})]}
            ),
        ),
        (
            "custom_variables",
            http.post(
                "/v3/chat",
                json={**chat, "query": "q", "custom_variables": {f"v{i}": "x" for i in range(65)}},
            ),
        ),
        (
            "custom_variables",
            http.post(
                "/v3/chat", json={**chat, "query": "q", "custom_variables": {"v": "x" * 16_384}}
            ),
        ),
        (
            "messages[1].content",
            http.post(
                "/v1/conversation/create", json={"messages": [message(), message("x" * 100_001)]}
            ),
        ),
        (
            "meta_data",
            http.post(
                "/v1/conversation/create", json={"meta_data": {f"k{i}": "v" for i in range(17)}}
            ),
        ),
        ("meta_data", http.put(f"/v1/conversations/{cid}", json={"meta_data": {"k": "v" * 513}})),
        (
            "content",
            http.post(
                "/v1/conversation/message/create",
                params={"conversation_id": cid},
                json=message("x" * 100_001),
            ),
        ),
        (
            "meta_data",
            http.post(
                "/v1/conversation/message/create",
                params={"conversation_id": cid},
                json=message(meta_data={f"k{i}": "v" for i in range(17)}),
            ),
        ),
        (
            "content",
            http.post(
                "/v1/conversation/message/modify",
                params={"conversation_id": cid, "message_id": mid},
                json={"content": "x" * 100_001},
            ),
        ),
        (
            "meta_data",
            http.post(
                "/v1/conversation/message/modify",
                params={"conversation_id": cid, "message_id": mid},
                json={"meta_data": {"k" * 65: "v"}},
            ),
        ),
    ]
    for field, response in cases:
        msg = assert_error(response, 400, field)
        assert "at most" in msg or "must be" in msg, msg
        world.unchanged_since(before, f"an oversized {field}")


def test_configured_request_limits(
    start_edge: StartEdge,
    make_account: Callable[..., Account],
    registry_channel_sync: grpc.Channel,
) -> None:
    url = start_edge(
        "edge-small-limits",
        {
            "COZEPLUS_EDGE_MAX_BODY_BYTES": "4096",
            "COZEPLUS_EDGE_MAX_CHAT_MESSAGES": "3",
            "COZEPLUS_EDGE_MAX_CONTENT_CHARS": "50",
            "COZEPLUS_EDGE_MAX_CUSTOM_VARIABLES": "2",
            "COZEPLUS_EDGE_MAX_CUSTOM_VARIABLES_BYTES": "64",
            "COZEPLUS_EDGE_MAX_META_DATA_PAIRS": "2",
            "COZEPLUS_EDGE_MAX_META_DATA_KEY_CHARS": "8",
            "COZEPLUS_EDGE_MAX_META_DATA_VALUE_CHARS": "16",
        },
    )
    world = make_world(url, make_account(), registry_channel_sync)
    with closing(world.http) as http:
        before = world.store.snapshot()
        at_limit = {"role": "user", "content": "x" * 50, "meta_data": {"k" * 8: "v" * 16, "b": ""}}
        chat = {"bot_id": world.bot_id, "user_id": "u", "stream": True}
        refused: list[tuple[int, str, httpx.Response]] = [
            (413, "4096 bytes", http.post("/v1/conversation/create", json={"name": "x" * 5000})),
            (
                400,
                "additional_messages",
                http.post(
                    "/v3/chat", json={**chat, "additional_messages": [at_limit] * 3, "query": "q"}
                ),
            ),
            (
                400,
                "additional_messages[0].content",
                http.post(
                    "/v3/chat",
                    json={**chat, "additional_messages": [{**at_limit, "content": "x" * 51}]},
                ),
            ),
            (400, "query", http.post("/v3/chat", json={**chat, "query": "x" * 51})),
            (
                400,
                "custom_variables",
                http.post(
                    "/v3/chat",
                    json={**chat, "query": "q", "custom_variables": {"a": "", "b": "", "c": ""}},
                ),
            ),
            (
                400,
                "custom_variables",
                http.post(
                    "/v3/chat", json={**chat, "query": "q", "custom_variables": {"a": "x" * 64}}
                ),
            ),
            (
                400,
                "meta_data",
                http.post(
                    "/v3/chat",
                    json={**chat, "query": "q", "meta_data": {"a": "", "b": "", "c": ""}},
                ),
            ),
            (
                400,
                "messages[0].meta_data",
                http.post(
                    "/v1/conversation/create",
                    json={"messages": [{**at_limit, "meta_data": {"k" * 9: ""}}]},
                ),
            ),
            (
                400,
                "messages[0].meta_data",
                http.post(
                    "/v1/conversation/create",
                    json={"messages": [{**at_limit, "meta_data": {"k": "v" * 17}}]},
                ),
            ),
        ]
        for status, fragment, response in refused:
            assert_error(response, status, fragment)
            world.unchanged_since(before, f"a request over the limit of {fragment}")
        # At the limits: accepted.
        created = data_of(
            http.post(
                "/v1/conversation/create",
                json={
                    "bot_id": world.bot_id,
                    "messages": [at_limit] * 3,
                    "meta_data": at_limit["meta_data"],
                },
            )
        )
        assert created["meta_data"] == at_limit["meta_data"]


def test_a_chat_too_large_for_the_message_queue_is_refused_before_anything_is_stored(
    world: World,
) -> None:
    """A body just under max_body_bytes (1 MiB) whose chat, with the fields the edge adds,
    no longer fits in one NATS message (1 MB by default)."""
    before = world.store.snapshot()
    body: dict[str, Any] = {
        "bot_id": str(world.bot_id),
        "user_id": "u",
        "additional_messages": [{"role": "user", "content": "x" * 100_000}] * 10,
        "custom_variables": {f"v{i}": "y" * 200 for i in range(60)},
        "meta_data": {f"k{i}": "z" * 500 for i in range(16)},
        "query": "",
    }
    filler = 1_048_576 - len(json.dumps(body, separators=(",", ":")))
    body["query"] = "q" * filler
    raw = json.dumps(body, separators=(",", ":")).encode()
    assert len(raw) == 1_048_576
    response = world.http.post(
        "/v3/chat", params={"conversation_id": world.conversation_id}, content=raw, headers=JSON
    )
    assert_error(response, 413, "message queue")
    world.unchanged_since(before, "a chat too large to queue")
