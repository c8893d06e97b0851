"""gRPC servicers of user_state.proto: MessageFeedback, Variables and BotPublishing."""

from __future__ import annotations

from typing import Any

from cozeplus.rpc.v1 import user_state_pb2 as us
from cozeplus.rpc.v1 import user_state_pb2_grpc as us_grpc
from services.registry.bots import BotService
from services.registry.grpc_api import translate_errors
from services.registry.user_state import (
    FeedbackService,
    FeedbackView,
    VariableScope,
    VariableService,
    VariableView,
)


class MessageFeedbackServicer(us_grpc.MessageFeedbackServicer):
    def __init__(self, service: FeedbackService) -> None:
        self._feedback = service

    @translate_errors
    async def SetFeedback(self, request: us.SetFeedbackRequest, context: Any) -> us.Feedback:
        ref = request.message
        view = await self._feedback.set_feedback(
            owner_id=ref.owner_id,
            conversation_id=ref.conversation_id,
            message_id=ref.message_id,
            feedback_type=request.feedback_type,
            reason_types=list(request.reason_types),
            comment=request.comment,
        )
        return _feedback_to_proto(view)

    @translate_errors
    async def GetFeedback(self, request: us.FeedbackRef, context: Any) -> us.Feedback:
        view = await self._feedback.get_feedback(
            owner_id=request.owner_id,
            conversation_id=request.conversation_id,
            message_id=request.message_id,
        )
        return _feedback_to_proto(view)

    @translate_errors
    async def DeleteFeedback(
        self, request: us.FeedbackRef, context: Any
    ) -> us.DeleteFeedbackResponse:
        deleted = await self._feedback.delete_feedback(
            owner_id=request.owner_id,
            conversation_id=request.conversation_id,
            message_id=request.message_id,
        )
        return us.DeleteFeedbackResponse(deleted=deleted)


class VariablesServicer(us_grpc.VariablesServicer):
    def __init__(self, service: VariableService) -> None:
        self._variables = service

    @translate_errors
    async def SetVariables(self, request: us.SetVariablesRequest, context: Any) -> us.UserVariables:
        views = await self._variables.set_variables(
            _scope(request.scope), [(v.keyword, v.value) for v in request.values]
        )
        return _variables_to_proto(views)

    @translate_errors
    async def GetVariables(self, request: us.GetVariablesRequest, context: Any) -> us.UserVariables:
        views = await self._variables.get_variables(_scope(request.scope), list(request.keywords))
        return _variables_to_proto(views)


class BotPublishingServicer(us_grpc.BotPublishingServicer):
    def __init__(self, service: BotService) -> None:
        self._bots = service

    @translate_errors
    async def Unpublish(self, request: us.UnpublishRequest, context: Any) -> us.UnpublishResponse:
        when = await self._bots.unpublish(
            owner_id=request.owner_id, bot_id=request.bot_id, reason=request.reason
        )
        return us.UnpublishResponse(bot_id=request.bot_id, unpublished_at=when)


def _scope(scope: us.VariableScope) -> VariableScope:
    return VariableScope(
        owner_id=scope.owner_id,
        bot_id=scope.bot_id,
        app_id=scope.app_id,
        connector_uid=scope.connector_uid,
    )


def _feedback_to_proto(view: FeedbackView) -> us.Feedback:
    return us.Feedback(
        message_id=view.message_id,
        conversation_id=view.conversation_id,
        feedback_type=view.feedback_type,
        reason_types=view.reason_types,
        comment=view.comment,
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


def _variables_to_proto(views: list[VariableView]) -> us.UserVariables:
    return us.UserVariables(
        values=[
            us.UserVariable(
                keyword=v.keyword,
                value=v.value,
                create_time=v.create_time,
                update_time=v.update_time,
            )
            for v in views
        ]
    )
