"""An OpenAI-compatible face for published bots, so any OpenAI client (the `openai` SDKs,
Open WebUI, LobeChat) can use them:

- `GET /v1/models`: the caller's published bots, `id` = bot id.
- `POST /v1/chat/completions` with `model` = bot id: runs the bot (its prompt, model settings,
  plugins and knowledge) as a normal chat through the queue on the messages given; streaming
  (`data: {chunk}` ... `data: [DONE]`, OpenAI's SSE, not Coze's) or not.

Errors use OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with the same
HTTP statuses as the rest of the edge. The bot decides its own prompt and sampling: system
and developer messages and sampling fields in the request are ignored.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import grpc
import orjson
from fastapi import APIRouter, FastAPI, Path, Request
from pydantic import ValidationError
from pydantic_core import PydanticCustomError
from starlette.responses import Response, StreamingResponse

from cozeplus.chat_protocol import CHAT_COMPLETED, MESSAGE_DELTA, TERMINAL_CHAT_EVENTS
from cozeplus.chat_wire import ANSWER_SEPARATOR
from cozeplus.rpc.v1 import registry_pb2 as pb
from services.edge.bot_chat import BotChat, start_bot_chat
from services.edge.core.auth import Principal
from services.edge.deps import CurrentUser, RateLimitClass, Runtime
from services.edge.errors import ApiError, validation_message
from services.edge.rate_limit import LimitClass
from services.edge.runtime import EdgeRuntime
from services.edge.schemas.chat import ChatMessageIn
from services.edge.schemas.common import parse_id
from services.edge.schemas.openai_compat import (
    COMPLETION_RESPONSES,
    OPENAI_ERROR_RESPONSES,
    ChatCompletionRequest,
    ChatMessage,
    ModelListView,
    ModelView,
    TextPart,
)

router = APIRouter(tags=["OpenAI-compatible"], responses=OPENAI_ERROR_RESPONSES)

_SCAN_PAGE_SIZE = 100
_SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
_DONE = b"data: [DONE]\n\n"


def _is_openai_path(path: str) -> bool:
    return path == "/v1/chat/completions" or path == "/v1/models" or path.startswith("/v1/models/")


# ------------------------------------------------------------------------- errors


def _error_type(status: int) -> tuple[str, str | None]:
    if status == 401:
        return "invalid_request_error", "invalid_api_key"
    if status == 403:
        return "permission_error", None
    if status == 429:
        return "requests", "rate_limit_exceeded"
    if status >= 500:
        return "server_error", None
    return "invalid_request_error", None


def openai_error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    kind, default_code = _error_type(status)
    body = {
        "error": {"message": message, "type": kind, "param": param, "code": code or default_code}
    }
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


class _ModelNotFound(ApiError):
    def __init__(self, model: str) -> None:
        super().__init__(
            404, f"The model `{model}` does not exist or you do not have access to it."
        )


def install_error_shape(app: FastAPI) -> None:
    """Errors on the OpenAI paths leave in OpenAI's shape: each installed handler still
    decides the status and message, then the envelope is rewritten here."""
    Handler = Callable[[Request, Any], Response | Awaitable[Response]]
    for exc_class, handler in list(app.exception_handlers.items()):

        def wrapped(original: Handler) -> Handler:
            async def handle(request: Request, exc: Any) -> Response:
                response = original(request, exc)
                if inspect.isawaitable(response):
                    response = await response
                if not _is_openai_path(request.url.path):
                    return response
                envelope = orjson.loads(bytes(response.body))
                headers = {
                    k: v
                    for k, v in response.headers.items()
                    if k.lower() not in ("content-length", "content-type")
                }
                code = "model_not_found" if isinstance(exc, _ModelNotFound) else None
                param = "model" if code else None
                return openai_error(
                    response.status_code,
                    envelope.get("msg", ""),
                    param=param,
                    code=code,
                    headers=headers,
                )

            return handle

        app.add_exception_handler(exc_class, wrapped(handler))


# ------------------------------------------------------------------------- models


def _model_object(version: pb.BotVersion, owner: str) -> dict[str, Any]:
    return {
        "id": str(version.bot_id),
        "object": "model",
        "created": version.published_at,
        "owned_by": owner,
    }


async def _published(runtime: EdgeRuntime, user: Principal) -> list[pb.BotVersion]:
    versions: list[pb.BotVersion] = []
    page_num = 1
    while True:
        reply = await runtime.registry.bots.ListPublished(
            pb.ListPublishedRequest(
                owner_id=user.user_id, space_id=0, page_size=_SCAN_PAGE_SIZE, page_num=page_num
            )
        )
        versions.extend(reply.versions)
        if not reply.versions or len(versions) >= reply.total:
            return versions
        page_num += 1


@router.get(
    "/v1/models",
    summary="The caller's published bots, as OpenAI models",
    response_model=ModelListView,
)
async def list_models(user: CurrentUser, runtime: Runtime) -> Response:
    data = [_model_object(v, user.username) for v in await _published(runtime, user)]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")


async def _bot_version(runtime: EdgeRuntime, user: Principal, model: str) -> pb.BotVersion:
    bot_id = _bot_id(model)
    try:
        return await runtime.registry.bots.GetVersion(
            pb.GetVersionRequest(owner_id=user.user_id, bot_id=bot_id, version=0)
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            raise _ModelNotFound(model) from None
        raise


def _bot_id(model: str) -> int:
    try:
        return parse_id(model)
    except PydanticCustomError:
        raise _ModelNotFound(model) from None


@router.get(
    "/v1/models/{model}",
    summary="One published bot, as an OpenAI model",
    response_model=ModelView,
)
async def retrieve_model(
    model: Annotated[str, Path(max_length=64)], user: CurrentUser, runtime: Runtime
) -> Response:
    version = await _bot_version(runtime, user, model)
    return Response(
        orjson.dumps(_model_object(version, user.username)), media_type="application/json"
    )


# -------------------------------------------------------------------- completions


def _message_content(message: ChatMessage) -> tuple[str, str]:
    """(content, content_type) in Coze's terms: text, or object_string for mixed parts."""
    content = message.content
    if content is None:
        return "", "text"
    if isinstance(content, str):
        return content, "text"
    if all(isinstance(part, TextPart) for part in content):
        return "".join(part.text for part in content if isinstance(part, TextPart)), "text"
    parts: list[dict[str, str]] = []
    for part in content:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
        else:
            parts.append({"type": "image", "file_url": part.image_url.url})
    return orjson.dumps(parts).decode(), "object_string"


def input_messages(body: ChatCompletionRequest) -> list[ChatMessageIn]:
    messages: list[ChatMessageIn] = []
    for index, message in enumerate(body.messages):
        # The bot's prompt is the system prompt; tool results belong to the bot's own tools.
        if message.role not in ("user", "assistant"):
            continue
        content, content_type = _message_content(message)
        if not content.strip():
            if message.role == "assistant":
                continue  # e.g. an assistant turn that only called tools
            raise ApiError(400, f"messages[{index}].content must not be empty")
        try:
            messages.append(
                ChatMessageIn.model_validate(
                    {"role": message.role, "content": content, "content_type": content_type}
                )
            )
        except ValidationError as err:
            raise ApiError(400, f"messages[{index}]: {validation_message(err.errors())}") from None
    if not messages or messages[-1].role != "user":
        raise ApiError(400, "messages must end with a user message")
    return messages


def _chunk(completion_id: str, created: int, model: str, choices: list[Any], **extra: Any) -> bytes:
    chunk = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": choices,
        **extra,
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def usage_of(chat: dict[str, Any]) -> dict[str, int]:
    usage = chat.get("usage") or {}
    prompt = int(usage.get("prompt_tokens", usage.get("input_count", 0)))
    completion = int(usage.get("completion_tokens", usage.get("output_count", 0)))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _failure(chat: dict[str, Any], event: str) -> tuple[int, str]:
    if event != CHAT_COMPLETED and event.endswith("canceled"):
        return 500, "the chat was canceled"
    error = chat.get("last_error") or {}
    code = int(error.get("code") or 500)
    return (503 if code == 503 else 500), str(error.get("msg") or "the bot's run failed")


async def _stream(chat: BotChat, model: str, include_usage: bool) -> AsyncIterator[bytes]:
    completion_id = f"chatcmpl-{chat.chat_id}"
    created = int(time.time())
    extra: dict[str, Any] = {"usage": None} if include_usage else {}

    def choice(delta: dict[str, Any], finish_reason: str | None = None) -> list[Any]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]

    yield _chunk(
        completion_id, created, model, choice({"role": "assistant", "content": ""}), **extra
    )
    # The answer message being streamed: the next one's text is set apart from it, as in the
    # non-streaming completion (ANSWER_SEPARATOR).
    answer_id = None
    async for name, data in chat.events():
        if name == MESSAGE_DELTA and data.get("type") == "answer" and data.get("content"):
            content = data["content"]
            if data.get("id") != answer_id:
                if answer_id is not None:
                    content = ANSWER_SEPARATOR + content
                answer_id = data.get("id")
            yield _chunk(completion_id, created, model, choice({"content": content}), **extra)
        elif name == CHAT_COMPLETED:
            yield _chunk(completion_id, created, model, choice({}, "stop"), **extra)
            if include_usage:
                yield _chunk(completion_id, created, model, [], usage=usage_of(data))
            break
        elif name in TERMINAL_CHAT_EVENTS:
            status, message = _failure(data, name)
            kind, _ = _error_type(status)
            error = {"message": message, "type": kind, "param": None, "code": None}
            yield b"data: " + orjson.dumps({"error": error}) + b"\n\n"
            break
    yield _DONE


class _OpenAIStreamResponse(StreamingResponse):
    def __init__(self, chat: BotChat, body: AsyncIterator[bytes]) -> None:
        super().__init__(body, headers=_SSE_HEADERS)
        self._chat = chat

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._chat.close()


@router.post(
    "/v1/chat/completions",
    # The models list is `other`; this one is a chat.
    dependencies=[RateLimitClass(LimitClass.CHAT)],
    summary="Run a published bot on OpenAI-style messages",
    response_model=None,
    responses=COMPLETION_RESPONSES,
    description="`model` is the bot id. Each call is a fresh, unsaved conversation with the "
    "messages given. Streams OpenAI chunks and `data: [DONE]` when `stream` is true.",
)
async def chat_completions(
    body: ChatCompletionRequest, user: CurrentUser, runtime: Runtime
) -> Response:
    messages = input_messages(body)
    bot_id = _bot_id(body.model)
    try:
        chat = await start_bot_chat(
            runtime,
            owner_id=user.user_id,
            bot_id=bot_id,
            user_id=body.user or str(user.user_id),
            messages=messages,
            stream=body.stream,
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            raise _ModelNotFound(body.model) from None
        raise
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return _OpenAIStreamResponse(chat, _stream(chat, body.model, include_usage))
    outcome = await chat.outcome()
    if outcome.event != CHAT_COMPLETED:
        status, message = _failure(outcome.chat, outcome.event)
        return openai_error(status, message)
    completion = {
        "id": f"chatcmpl-{chat.chat_id}",
        "object": "chat.completion",
        "created": outcome.chat.get("created_at") or int(time.time()),
        "model": body.model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": outcome.answer, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage_of(outcome.chat),
    }
    return Response(orjson.dumps(completion), media_type="application/json")
