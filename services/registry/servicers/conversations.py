"""The Conversations gRPC servicer: proto messages in, domain calls, proto messages out. Domain
errors become status codes in one place, services/registry/servicers/errors.py."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import conversations_pb2_grpc as cpb_grpc
from services.registry import conversations
from services.registry.conversations import ConversationService


class ConversationsServicer(cpb_grpc.ConversationsServicer):
    def __init__(self, service: ConversationService) -> None:
        self._conversations = service

    # ----------------------------------------------------------- conversations

    async def CreateConversation(
        self, request: cpb.CreateConversationRequest, context: Any
    ) -> cpb.Conversation:
        conversation = await self._conversations.create_conversation(
            owner_id=request.owner_id,
            user_id=request.user_id,
            bot_id=request.bot_id,
            name=request.name,
            meta_data_json=request.meta_data_json,
            messages=new_messages_from_proto(request.messages),
        )
        return conversation_to_proto(conversation)

    async def GetConversation(self, request: cpb.ConversationRef, context: Any) -> cpb.Conversation:
        conversation = await self._conversations.get_conversation(
            owner_id=request.owner_id,
            conversation_id=request.conversation_id,
            user_id=request.user_id,
        )
        return conversation_to_proto(conversation)

    async def ListConversations(
        self, request: cpb.ListConversationsRequest, context: Any
    ) -> cpb.ListConversationsResponse:
        page = await self._conversations.list_conversations(
            owner_id=request.owner_id,
            bot_id=request.bot_id,
            user_id=request.user_id,
            page_num=request.page_num,
            page_size=request.page_size,
            sort_order=request.sort_order,
        )
        return cpb.ListConversationsResponse(
            conversations=[conversation_to_proto(c) for c in page.conversations],
            has_more=page.has_more,
        )

    async def UpdateConversation(
        self, request: cpb.UpdateConversationRequest, context: Any
    ) -> cpb.Conversation:
        conversation = await self._conversations.update_conversation(
            owner_id=request.owner_id,
            conversation_id=request.conversation_id,
            name=request.name if request.HasField("name") else None,
            meta_data_json=(request.meta_data_json if request.HasField("meta_data_json") else None),
        )
        return conversation_to_proto(conversation)

    async def DeleteConversation(
        self, request: cpb.ConversationRef, context: Any
    ) -> cpb.Conversation:
        conversation = await self._conversations.delete_conversation(
            owner_id=request.owner_id,
            conversation_id=request.conversation_id,
            user_id=request.user_id,
        )
        return conversation_to_proto(conversation)

    async def ClearConversation(self, request: cpb.ConversationRef, context: Any) -> cpb.Section:
        section = await self._conversations.clear_conversation(
            owner_id=request.owner_id,
            conversation_id=request.conversation_id,
            user_id=request.user_id,
        )
        return cpb.Section(id=section.id, conversation_id=section.conversation_id)

    # ---------------------------------------------------------------- messages

    async def CreateMessage(self, request: cpb.CreateMessageRequest, context: Any) -> cpb.Message:
        message = await self._conversations.create_message(
            owner_id=request.owner_id,
            conversation_id=request.conversation_id,
            message=new_message_from_proto(request.message),
        )
        return message_to_proto(message)

    async def GetMessage(self, request: cpb.MessageRef, context: Any) -> cpb.Message:
        message = await self._conversations.get_message(
            owner_id=request.owner_id,
            conversation_id=request.conversation_id,
            message_id=request.message_id,
        )
        return message_to_proto(message)

    async def ListMessages(
        self, request: cpb.ListMessagesRequest, context: Any
    ) -> cpb.ListMessagesResponse:
        page = await self._conversations.list_messages(
            owner_id=request.owner_id,
            conversation_id=request.conversation_id,
            order=request.order,
            before_id=request.before_id,
            after_id=request.after_id,
            limit=request.limit,
            chat_id=request.chat_id,
        )
        return cpb.ListMessagesResponse(
            messages=[message_to_proto(m) for m in page.messages],
            first_id=page.first_id,
            last_id=page.last_id,
            has_more=page.has_more,
        )

    async def ModifyMessage(self, request: cpb.ModifyMessageRequest, context: Any) -> cpb.Message:
        message = await self._conversations.modify_message(
            owner_id=request.owner_id,
            conversation_id=request.conversation_id,
            message_id=request.message_id,
            content=request.content if request.HasField("content") else None,
            content_type=request.content_type if request.HasField("content_type") else None,
            meta_data_json=(request.meta_data_json if request.HasField("meta_data_json") else None),
        )
        return message_to_proto(message)

    async def DeleteMessage(self, request: cpb.MessageRef, context: Any) -> cpb.Message:
        message = await self._conversations.delete_message(
            owner_id=request.owner_id,
            conversation_id=request.conversation_id,
            message_id=request.message_id,
        )
        return message_to_proto(message)

    # --------------------------------------------------------------- chat runs

    async def CreateChat(self, request: cpb.CreateChatRequest, context: Any) -> cpb.ChatRun:
        return (await self.OpenChat(request, context)).run

    async def OpenChat(self, request: cpb.CreateChatRequest, context: Any) -> cpb.CreatedChat:
        created = await self._conversations.create_chat(
            owner_id=request.owner_id,
            user_id=request.user_id,
            chat_id=request.chat_id,
            conversation_id=request.conversation_id,
            bot_id=request.bot_id,
            bot_version=request.bot_version,
            model_id=request.model_id,
            messages=new_messages_from_proto(request.messages),
            meta_data_json=request.meta_data_json,
            auto_save_history=request.auto_save_history,
            history_rounds=request.history_rounds,
            new_conversation_id=request.new_conversation_id,
        )
        return cpb.CreatedChat(
            run=run_to_proto(created.run),
            history=[message_to_proto(m) for m in created.history],
        )

    async def StartRun(self, request: cpb.StartRunRequest, context: Any) -> cpb.StartRunResponse:
        started = await self._conversations.start_run(
            owner_id=request.owner_id,
            chat_id=request.chat_id,
            history_rounds=request.history_rounds,
            with_messages=not request.without_messages,
        )
        return cpb.StartRunResponse(
            run=run_to_proto(started.run),
            history=[message_to_proto(m) for m in started.history],
            restarted=started.restarted,
            chat_messages=[message_to_proto(m) for m in started.chat_messages],
            unsaved_input_json=started.unsaved_input_json,
            answer_so_far=started.answer_so_far,
        )

    async def FinishRun(self, request: cpb.FinishRunRequest, context: Any) -> cpb.ChatRun:
        run = await self._conversations.finish_run(
            owner_id=request.owner_id,
            chat_id=request.chat_id,
            status=request.status,
            answer=request.answer,
            reasoning_content=request.reasoning_content,
            answer_message_id=request.answer_message_id,
            usage=conversations.Usage(request.usage.prompt_tokens, request.usage.completion_tokens),
            last_error=conversations.ChatError(request.last_error.code, request.last_error.msg),
            first_token_ms=request.first_token_ms,
            duration_ms=request.duration_ms,
        )
        return run_to_proto(run)

    async def GetChat(self, request: cpb.ChatRef, context: Any) -> cpb.ChatRun:
        run = await self._conversations.get_chat(
            owner_id=request.owner_id,
            chat_id=request.chat_id,
            conversation_id=request.conversation_id,
        )
        return run_to_proto(run)

    async def ListChatMessages(
        self, request: cpb.ChatRef, context: Any
    ) -> cpb.ChatMessagesResponse:
        messages = await self._conversations.list_chat_messages(
            owner_id=request.owner_id,
            chat_id=request.chat_id,
            conversation_id=request.conversation_id,
        )
        return cpb.ChatMessagesResponse(messages=[message_to_proto(m) for m in messages])

    async def CancelChat(
        self, request: cpb.CancelChatRequest, context: Any
    ) -> cpb.CancelChatResponse:
        canceled = await self._conversations.cancel_chat(
            owner_id=request.owner_id,
            conversation_id=request.conversation_id,
            chat_id=request.chat_id,
        )
        return cpb.CancelChatResponse(run=run_to_proto(canceled.run), running=canceled.running)

    async def AbortQueuedChat(
        self, request: cpb.AbortQueuedChatRequest, context: Any
    ) -> cpb.ChatRun:
        run = await self._conversations.abort_queued_chat(
            owner_id=request.owner_id,
            chat_id=request.chat_id,
            status=request.status,
            last_error=conversations.ChatError(request.last_error.code, request.last_error.msg),
        )
        return run_to_proto(run)

    # ------------------------------------------------------------ agent loop

    async def AppendRunMessages(
        self, request: cpb.AppendRunMessagesRequest, context: Any
    ) -> cpb.AppendRunMessagesResponse:
        stored = await self._conversations.append_run_messages(
            owner_id=request.owner_id,
            chat_id=request.chat_id,
            messages=[
                conversations.RunMessage(
                    id=m.id,
                    role=m.role,
                    type=m.type,
                    content=m.content,
                    content_type=m.content_type,
                    tool_call_id=m.tool_call_id,
                )
                for m in request.messages
            ],
        )
        return cpb.AppendRunMessagesResponse(messages=[message_to_proto(m) for m in stored])

    async def PauseRun(self, request: cpb.PauseRunRequest, context: Any) -> cpb.ChatRun:
        run = await self._conversations.pause_run(
            owner_id=request.owner_id,
            chat_id=request.chat_id,
            tool_calls=[
                conversations.PendingToolCall(id=c.id, name=c.name, arguments=c.arguments)
                for c in request.tool_calls
            ],
            usage=conversations.Usage(request.usage.prompt_tokens, request.usage.completion_tokens),
            custom_variables_json=request.custom_variables_json,
            first_token_ms=request.first_token_ms,
            duration_ms=request.duration_ms,
            unsaved_input_json=request.unsaved_input_json,
            answer_so_far=request.answer_so_far,
        )
        return run_to_proto(run)

    async def SubmitToolOutputs(
        self, request: cpb.SubmitToolOutputsRequest, context: Any
    ) -> cpb.ChatRun:
        run = await self._conversations.submit_tool_outputs(
            owner_id=request.owner_id,
            conversation_id=request.conversation_id,
            chat_id=request.chat_id,
            tool_outputs=[
                conversations.ToolOutput(tool_call_id=o.tool_call_id, output=o.output)
                for o in request.tool_outputs
            ],
        )
        return run_to_proto(run)


def new_message_from_proto(message: cpb.NewMessage) -> conversations.NewMessage:
    return conversations.NewMessage(
        role=message.role,
        type=message.type,
        content=message.content,
        content_type=message.content_type,
        meta_data_json=message.meta_data_json,
    )


def new_messages_from_proto(
    messages: Iterable[cpb.NewMessage],
) -> list[conversations.NewMessage]:
    return [new_message_from_proto(m) for m in messages]


def meta_data_json(meta_data: dict[str, str]) -> str:
    # Always an object, never "": callers hand it to clients that require one.
    return orjson.dumps(meta_data).decode() if meta_data else "{}"


def conversation_to_proto(conversation: conversations.ConversationView) -> cpb.Conversation:
    return cpb.Conversation(
        id=conversation.id,
        owner_id=conversation.owner_id,
        user_id=conversation.user_id,
        bot_id=conversation.bot_id,
        name=conversation.name,
        meta_data_json=meta_data_json(conversation.meta_data),
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        last_section_id=conversation.last_section_id,
    )


def message_to_proto(message: conversations.MessageView) -> cpb.Message:
    return cpb.Message(
        id=message.id,
        conversation_id=message.conversation_id,
        section_id=message.section_id,
        chat_id=message.chat_id,
        bot_id=message.bot_id,
        role=message.role,
        type=message.type,
        content=message.content,
        content_type=message.content_type,
        reasoning_content=message.reasoning_content,
        meta_data_json=meta_data_json(message.meta_data),
        created_at=message.created_at,
        updated_at=message.updated_at,
    )


def run_to_proto(run: conversations.ChatRunView) -> cpb.ChatRun:
    return cpb.ChatRun(
        id=run.id,
        conversation_id=run.conversation_id,
        section_id=run.section_id,
        owner_id=run.owner_id,
        user_id=run.user_id,
        bot_id=run.bot_id,
        bot_version=run.bot_version,
        status=run.status,
        created_at=run.created_at,
        started_at=run.started_at,
        completed_at=run.completed_at,
        failed_at=run.failed_at,
        canceled_at=run.canceled_at,
        last_error=cpb.ChatError(code=run.last_error.code, msg=run.last_error.msg),
        usage=cpb.Usage(
            prompt_tokens=run.usage.prompt_tokens,
            completion_tokens=run.usage.completion_tokens,
        ),
        meta_data_json=meta_data_json(run.meta_data),
        first_token_ms=run.first_token_ms,
        duration_ms=run.duration_ms,
        model_id=run.model_id,
        auto_save_history=run.auto_save_history,
        pending_tool_calls=[
            cpb.PendingToolCall(id=c.id, name=c.name, arguments=c.arguments)
            for c in run.pending_tool_calls
        ],
        paused_until=run.paused_until,
        custom_variables_json=orjson.dumps(run.custom_variables).decode()
        if run.custom_variables
        else "",
    )
