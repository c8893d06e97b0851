"""POST /v3/chat without FastAPI's request machinery, for the requests that need none of it.

A chat is the edge's hottest request, and FastAPI's share of it (matching every route before
this one, a regular expression each; solving five dependencies; reading the body; two more
middleware layers) cost about as much edge CPU as the request's own work (profiled under 50
chats in flight). This layer sits inside the edge's own middleware (log id, access log, body
limit, last-resort 500) and serves the plain case itself: a JSON body and query that validate,
and a bearer token. It calls the pieces the route is made of: the same body model and query
validator, the authentication and rate limit of services/edge/deps.py, the route function
itself and the app's exception handlers, so the answer is the route's.

Anything else goes to FastAPI untouched: another content type, a body or query that does not
parse or validate, credentials other than a bearer token. That is decided before anything is
authenticated or counted, so FastAPI then answers exactly as it always did (the order of its
checks, the wording of every error), and the route's OpenAPI description is the one it has.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from fastapi.security.utils import get_authorization_scheme_param
from pydantic import TypeAdapter
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.edge.deps import authenticate_and_count, declare_limit_class
from services.edge.rate_limit import LimitClass
from services.edge.routes.chat import chat_v3
from services.edge.runtime import EdgeRuntime
from services.edge.schemas.chat import ChatBody, OptionalId

CHAT_PATH = "/v3/chat"

ExceptionHandler = Callable[[Request, Exception], Response | Awaitable[Response]]

_conversation_id = TypeAdapter(OptionalId)


class ChatFastPath:
    def __init__(self, app: ASGIApp, exception_handlers: Mapping[Any, ExceptionHandler]) -> None:
        self.app = app
        # The app's own handlers (the same mapping, so handlers added later count too).
        self._exception_handlers = exception_handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != CHAT_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        message = await receive()
        plain = plain_chat_request(scope, message)
        if plain is None:
            await self.app(scope, _replaying(message, receive), send)
            return
        body, token, conversation_id = plain
        request = Request(scope, receive)
        try:
            runtime = cast(EdgeRuntime, scope["app"].state.runtime)
            # As the chat router's RateLimitClass dependency declares it.
            declare_limit_class(request, LimitClass.CHAT)
            user = await authenticate_and_count(request, runtime, token)
            response = await chat_v3(body, user, runtime, conversation_id)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            answer = handler(request, exc)
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> ExceptionHandler | None:
        # As Starlette's ExceptionMiddleware looks one up: the nearest class in the MRO.
        for cls in type(exc).__mro__:
            handler = self._exception_handlers.get(cls)
            if handler is not None:
                return handler
        return None


def plain_chat_request(scope: Scope, message: Message) -> tuple[ChatBody, str, int | None] | None:
    """The chat body, bearer token and query conversation id of a request this layer serves
    itself; None for anything FastAPI should see (the request is then unchanged)."""
    if message["type"] != "http.request" or message.get("more_body", False):
        return None
    token: str | None = None
    content_type: str | None = None
    # Starlette's request.headers.get takes the first of repeated headers: so do we.
    for name, value in scope["headers"]:
        if name == b"authorization" and token is None:
            token = _bearer_token(value.decode("latin-1"))
            if token is None:
                return None
        elif name == b"content-type" and content_type is None:
            content_type = value.decode("latin-1")
    if token is None or content_type is None:
        return None
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        return None
    try:
        # The stdlib parser, as FastAPI's: orjson reads some documents differently (integers
        # past 64 bits become floats).
        body = ChatBody.model_validate(json.loads(message.get("body", b"")))
        conversation_id: int | None = None
        if scope["query_string"]:
            raw_id = QueryParams(scope["query_string"]).get("conversation_id")
            if raw_id is not None:
                conversation_id = _conversation_id.validate_python(raw_id)
    except Exception:  # whatever it is, FastAPI says it as it always has
        return None
    return body, token, conversation_id


def _bearer_token(authorization: str) -> str | None:
    # fastapi.security.HTTPBearer's reading of the header, then current_credentials' strip.
    scheme, credentials = get_authorization_scheme_param(authorization)
    credentials = credentials.strip()
    if not (scheme and credentials) or scheme.lower() != "bearer":
        return None
    return credentials


def _replaying(first: Message, receive: Receive) -> Receive:
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return first
        return await receive()

    return replay
