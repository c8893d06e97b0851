"""Chat routes: the official /v3/chat family and the product document's
/api/conversation/chat. The logic lives in services/edge/chat_gateway.py; these handlers
validate, call it, and pick the transport (SSE or one JSON answer)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from cozeplus.chat_wire import chat_object, message_object
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from services.edge import chat_gateway
from services.edge.auth import CurrentUser, Principal
from services.edge.chat_gateway import ChatSession
from services.edge.chat_variables import with_stored_variables
from services.edge.responses import EventStreamResponse, envelope_json
from services.edge.runtime import EdgeRuntime, Runtime
from services.edge.schemas.chat import (
    STREAM_RESPONSE,
    ApiChatAnswerView,
    CancelChatBody,
    ChatAnswerView,
    ChatBody,
    ChatView,
    InternalChatBody,
    MessageView,
    OptionalId,
    SubmitToolOutputsBody,
)
from services.edge.schemas.common import ERROR_RESPONSES, Envelope, Id

router = APIRouter(tags=["chat"], responses=ERROR_RESPONSES)

ConversationIdQuery = Annotated[Id, Query(description="The chat's conversation.")]
ChatIdQuery = Annotated[Id, Query()]
# Fields of a Chat that are ids: strings on /v3 (the SDKs insist), numbers on /api.
_ID_FIELDS = ("id", "conversation_id", "bot_id", "section_id")


async def _respond(session: ChatSession, stream: bool, ids_as_numbers: bool = False) -> Response:
    if stream:
        return EventStreamResponse(session)
    data = chat_gateway.answer_data(await session.outcome())
    if ids_as_numbers:
        for key in _ID_FIELDS:
            data[key] = int(data[key])
    return envelope_json(data)


@router.post(
    "/v3/chat",
    summary="Chat with a bot's latest published version",
    description="Runs the bot on the conversation (a new one when none is given). With "
    "`stream: true` the answer is a server-sent event stream; otherwise the call waits for "
    "the run to end and returns the Chat merged with the answer. A chat no runner picks up "
    "in time is a 503; a run that fails returns its Chat with status `failed` and "
    "`last_error`.",
    response_model=Envelope[ChatAnswerView],
    responses=STREAM_RESPONSE,
)
async def chat_v3(
    body: ChatBody,
    user: CurrentUser,
    runtime: Runtime,
    conversation_id: Annotated[
        OptionalId,
        Query(description="The official place for it; wins over the body's ConversationID."),
    ] = None,
) -> Response:
    runtime.limits.chat(body, body.query)
    messages = chat_gateway.input_messages(body.additional_messages, body.query)
    target = await chat_gateway.published_target(runtime, user.user_id, body.bot_id)
    options = await with_stored_variables(
        runtime, owner_id=user.user_id, bot_id=body.bot_id, user_id=body.user_id, options=body
    )
    session = await chat_gateway.start_chat(
        runtime,
        owner_id=user.user_id,
        user_id=body.user_id,
        target=target,
        conversation_id=conversation_id or body.conversation_id,
        messages=messages,
        options=options,
    )
    return await _respond(session, body.stream)


@router.post(
    "/api/conversation/chat",
    tags=["chat"],
    summary="Run a bot's draft (try it before publishing)",
    description="Same events as /v3/chat. `user_id` defaults to the caller's account id. "
    "The JSON answer carries ids as numbers, as everywhere under /api.",
    response_model=Envelope[ApiChatAnswerView],
    responses=STREAM_RESPONSE,
)
async def internal_chat(body: InternalChatBody, user: CurrentUser, runtime: Runtime) -> Response:
    runtime.limits.chat(body, body.query)
    messages = chat_gateway.input_messages(body.additional_messages, body.query)
    target = await chat_gateway.draft_target(runtime, user.user_id, body.agent_id)
    end_user = body.user_id or str(user.user_id)
    options = await with_stored_variables(
        runtime, owner_id=user.user_id, bot_id=body.agent_id, user_id=end_user, options=body
    )
    session = await chat_gateway.start_chat(
        runtime,
        owner_id=user.user_id,
        user_id=end_user,
        target=target,
        conversation_id=body.conversation_id,
        messages=messages,
        options=options,
    )
    return await _respond(session, body.stream, ids_as_numbers=True)


@router.post(
    "/v3/chat/submit_tool_outputs",
    summary="Resume a chat waiting in requires_action with the client's tool outputs",
    description="Gives a chat paused for client-side functions (status `requires_action`) "
    "one output per pending tool call; the same chat then continues on whichever runner "
    "takes it. With `stream: true` the answer is the continued run's event stream (from "
    "`conversation.chat.in_progress` on); otherwise the call waits and returns the Chat as "
    "the run ends. A chat not in `requires_action`, or missing or unknown `tool_call_id`s, "
    "are a 400 and change nothing.",
    response_model=Envelope[ChatAnswerView],
    responses=STREAM_RESPONSE,
)
async def submit_tool_outputs(
    body: SubmitToolOutputsBody,
    conversation_id: ConversationIdQuery,
    chat_id: ChatIdQuery,
    user: CurrentUser,
    runtime: Runtime,
) -> Response:
    session = await chat_gateway.resume_chat(
        runtime,
        owner_id=user.user_id,
        conversation_id=conversation_id,
        chat_id=chat_id,
        outputs=[(o.tool_call_id, o.output) for o in body.tool_outputs],
    )
    return await _respond(session, body.stream)


@router.post(
    "/v3/chat/cancel",
    summary="Cancel a queued or running chat",
    description="Stops the run (the model call is aborted, the partial answer kept) and "
    "returns the Chat, normally with status `canceled`. Without `chat_id`, cancels the "
    "conversation's unfinished chat. A finished chat is a 409.",
    response_model=Envelope[ChatView],
)
async def cancel_chat(body: CancelChatBody, user: CurrentUser, runtime: Runtime) -> Response:
    chat = await chat_gateway.cancel_chat(
        runtime, user.user_id, body.conversation_id, body.chat_id or 0
    )
    return envelope_json(chat)


async def _retrieve(
    runtime: EdgeRuntime, user: Principal, conversation_id: int, chat_id: int
) -> dict[str, Any]:
    run = await runtime.registry.conversations.GetChat(
        cpb.ChatRef(owner_id=user.user_id, chat_id=chat_id, conversation_id=conversation_id)
    )
    return chat_object(run)


_RETRIEVE_SUMMARY = "A chat, with its status and usage"


@router.get("/v3/chat/retrieve", summary=_RETRIEVE_SUMMARY, response_model=Envelope[ChatView])
async def retrieve_chat_get(
    conversation_id: ConversationIdQuery,
    chat_id: ChatIdQuery,
    user: CurrentUser,
    runtime: Runtime,
) -> Response:
    return envelope_json(await _retrieve(runtime, user, conversation_id, chat_id))


@router.post("/v3/chat/retrieve", summary=_RETRIEVE_SUMMARY, response_model=Envelope[ChatView])
async def retrieve_chat_post(
    conversation_id: ConversationIdQuery,
    chat_id: ChatIdQuery,
    user: CurrentUser,
    runtime: Runtime,
) -> Response:
    return envelope_json(await _retrieve(runtime, user, conversation_id, chat_id))


@router.get(
    "/v3/chat/message/list",
    summary="A chat's messages",
    description="`data` is a bare array of Messages.",
    response_model=Envelope[list[MessageView]],
)
async def list_chat_messages(
    conversation_id: ConversationIdQuery,
    chat_id: ChatIdQuery,
    user: CurrentUser,
    runtime: Runtime,
) -> Response:
    reply = await runtime.registry.conversations.ListChatMessages(
        cpb.ChatRef(owner_id=user.user_id, chat_id=chat_id, conversation_id=conversation_id)
    )
    return envelope_json([message_object(m) for m in reply.messages])
