"""The /v3/chat fast path (services/edge/chat_fast_path.py), in process: which requests it
serves itself, and that it hands every other one to FastAPI exactly as it arrived. Chats
through it, and FastAPI's answers to everything else, are covered over real HTTP by
tests/chat and tests/edge."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest
from starlette.types import Message, Scope

from services.edge.app import create_app
from services.edge.chat_fast_path import ChatFastPath, plain_chat_request
from services.edge.core.auth import unauthorized
from services.edge.schemas.chat import ChatBody
from services.edge.settings import EdgeSettings

BODY = {"bot_id": "7", "user_id": "u1", "stream": True, "query": "hi"}
BEARER = (b"authorization", b"Bearer pat_abc")
JSON = (b"content-type", b"application/json")


def scope_of(
    headers: list[tuple[bytes, bytes]], query: bytes = b"", path: str = "/v3/chat"
) -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": query,
        "headers": headers,
        "state": {},
    }


def request_of(body: bytes, more_body: bool = False) -> Message:
    return {"type": "http.request", "body": body, "more_body": more_body}


def test_a_plain_request_is_read_as_the_route_reads_it() -> None:
    plain = plain_chat_request(
        scope_of([BEARER, (b"content-type", b"Application/JSON; charset=utf-8")], b"x=1"),
        request_of(orjson.dumps(BODY)),
    )
    assert plain == (ChatBody.model_validate(BODY), "pat_abc", None)
    plain = plain_chat_request(
        scope_of([JSON, (b"authorization", b"bearer  pat_abc ")], b"other=1"),
        request_of(orjson.dumps({**BODY, "ConversationID": "9"})),
    )
    assert plain is not None
    body, token, conversation_id = plain
    assert (body.conversation_id, token, conversation_id) == (9, "pat_abc", None)
    plain = plain_chat_request(
        scope_of([BEARER, JSON], b"conversation_id=42"), request_of(orjson.dumps(BODY))
    )
    assert plain is not None and plain[2] == 42


@pytest.mark.parametrize(
    ("headers", "query", "body", "more_body"),
    [
        pytest.param([JSON], b"", orjson.dumps(BODY), False, id="no credentials"),
        pytest.param(
            [JSON, (b"cookie", b"cozeplus_session=s")], b"", orjson.dumps(BODY), False, id="cookie"
        ),
        pytest.param(
            [JSON, (b"authorization", b"Basic dTpw")], b"", orjson.dumps(BODY), False, id="basic"
        ),
        pytest.param(
            [JSON, (b"authorization", b"Bearer")], b"", orjson.dumps(BODY), False, id="no token"
        ),
        pytest.param(
            [JSON, (b"authorization", b"Basic dTpw"), BEARER],
            b"",
            orjson.dumps(BODY),
            False,
            id="first authorization header not a bearer",
        ),
        pytest.param([BEARER], b"", orjson.dumps(BODY), False, id="no content type"),
        pytest.param(
            [BEARER, (b"content-type", b"text/plain")], b"", orjson.dumps(BODY), False, id="text"
        ),
        pytest.param(
            [BEARER, (b"content-type", b"application/merge-patch+json")],
            b"",
            orjson.dumps(BODY),
            False,
            id="another json type",
        ),
        pytest.param([BEARER, JSON], b"", b"", False, id="empty body"),
        pytest.param([BEARER, JSON], b"", b'{"bot_id": ', False, id="malformed json"),
        pytest.param([BEARER, JSON], b"", b"[]", False, id="not an object"),
        pytest.param([BEARER, JSON], b"", b'{"bot_id": NaN}', False, id="json only python reads"),
        pytest.param(
            [BEARER, JSON], b"", orjson.dumps({"user_id": "u", "query": "q"}), False, id="invalid"
        ),
        pytest.param(
            [BEARER, JSON],
            b"",
            b'{"bot_id": "7", "user_id": "u", "query": "q", "parameters": {"n": 1'
            + b"0" * 30
            + b"}}",
            False,
            id="an integer past 64 bits",
        ),
        pytest.param(
            [BEARER, JSON], b"conversation_id=abc", orjson.dumps(BODY), False, id="bad query"
        ),
        pytest.param([BEARER, JSON], b"", orjson.dumps(BODY), True, id="body in parts"),
    ],
)
def test_anything_else_is_left_to_fastapi(
    headers: list[tuple[bytes, bytes]], query: bytes, body: bytes, more_body: bool
) -> None:
    assert plain_chat_request(scope_of(headers, query), request_of(body, more_body)) is None


class Recorder:
    """Stands for FastAPI: records what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Message]]] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        self.calls.append((scope["path"], [await receive()]))


async def call(fast_path: ChatFastPath, scope: Scope, body: bytes) -> list[Message]:
    sent: list[Message] = []
    received = [request_of(body)]

    async def receive() -> Message:
        return received.pop(0) if received else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await fast_path(scope, receive, send)
    return sent


async def test_fastapi_gets_what_it_would_have_got() -> None:
    fastapi = Recorder()
    fast_path = ChatFastPath(fastapi, exception_handlers={})
    body = b'{"bot_id": '
    await call(fast_path, scope_of([BEARER, JSON]), body)
    await call(fast_path, scope_of([BEARER, JSON], path="/v3/chat/retrieve"), body)
    assert fastapi.calls == [
        ("/v3/chat", [request_of(body)]),
        ("/v3/chat/retrieve", [request_of(body)]),
    ]


async def test_errors_are_answered_by_the_apps_handlers() -> None:
    class Refusing:
        async def authenticate(self, token: str) -> Any:
            raise unauthorized("invalid, expired or revoked credentials")

    fastapi = Recorder()
    app = create_app(EdgeSettings())
    fast_path = ChatFastPath(fastapi, exception_handlers=app.exception_handlers)
    scope = scope_of([BEARER, JSON])
    scope["app"] = SimpleNamespace(state=SimpleNamespace(runtime=Refusing()))
    scope["app"].state.runtime.authenticator = scope["app"].state.runtime
    sent = await call(fast_path, scope, orjson.dumps(BODY))
    assert fastapi.calls == []
    start, body = sent
    assert start["status"] == 401
    assert (b"www-authenticate", b"Bearer") in cast(list[tuple[bytes, bytes]], start["headers"])
    assert orjson.loads(body["body"]) == {
        "code": 401,
        "msg": "invalid, expired or revoked credentials",
        "data": None,
    }
