"""gRPC servicers: proto messages in, domain calls, proto messages out.

Domain errors become their status codes here; anything else is a fault of ours and
becomes INTERNAL with a generic message (the details go to the log, not the caller).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1 import registry_pb2_grpc as pb_grpc
from services.registry import accounts, bots
from services.registry.accounts import AccountService
from services.registry.bots import BotService
from services.registry.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RegistryError,
    Unauthenticated,
    Unavailable,
)
from services.registry.paging import PageRequest

STATUS_BY_ERROR: dict[type[RegistryError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}

Servicer = TypeVar("Servicer")
Request = TypeVar("Request")
Response = TypeVar("Response")

log = logging.getLogger(__name__)


def status_for(error: RegistryError) -> grpc.StatusCode:
    for error_class, code in STATUS_BY_ERROR.items():
        if isinstance(error, error_class):
            return code
    return grpc.StatusCode.INTERNAL


def translate_errors(
    handler: Callable[[Servicer, Request, Any], Awaitable[Response]],
) -> Callable[[Servicer, Request, Any], Awaitable[Response]]:
    @functools.wraps(handler)
    async def wrapper(self: Servicer, request: Request, context: Any) -> Response:
        try:
            return await handler(self, request, context)
        except RegistryError as exc:
            code = status_for(exc)
            log.debug(
                "%s -> %s: %s [log id %s]", handler.__name__, code.name, exc, _log_id(context)
            )
            await context.abort(code, exc.message)
            raise  # unreachable: abort() raises
        except Exception:
            log.exception("%s failed [log id %s]", handler.__name__, _log_id(context))
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            raise

    return wrapper


def _log_id(context: Any) -> str:
    """The caller's request id (the edge sends `x-log-id`), to join its logs with ours."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-log-id":
            return str(value)
    return "-"


# ------------------------------------------------------------------ bots


class BotRegistryServicer(pb_grpc.BotRegistryServicer):
    def __init__(self, service: BotService) -> None:
        self._bots = service

    @translate_errors
    async def CreateDraft(self, request: pb.CreateDraftRequest, context: Any) -> pb.Bot:
        draft = await self._bots.create_draft(
            owner_id=request.owner_id,
            space_id=request.space_id,
            name=request.name,
            description=request.description,
            icon_url=request.icon_url,
            config=config_from_proto(request.config) if request.HasField("config") else None,
        )
        return draft_to_proto(draft)

    @translate_errors
    async def UpdateDisplayInfo(self, request: pb.UpdateDisplayInfoRequest, context: Any) -> pb.Bot:
        draft = await self._bots.update_display_info(
            owner_id=request.owner_id,
            bot_id=request.bot_id,
            name=request.name if request.HasField("name") else None,
            description=request.description if request.HasField("description") else None,
            icon_url=request.icon_url if request.HasField("icon_url") else None,
        )
        return draft_to_proto(draft)

    @translate_errors
    async def UpdateConfig(self, request: pb.UpdateConfigRequest, context: Any) -> pb.Bot:
        draft = await self._bots.update_config(
            owner_id=request.owner_id,
            bot_id=request.bot_id,
            config=config_from_proto(request.config) if request.HasField("config") else None,
            mask_paths=list(request.update_mask.paths),
        )
        return draft_to_proto(draft)

    @translate_errors
    async def GetDraft(self, request: pb.BotRef, context: Any) -> pb.Bot:
        draft = await self._bots.get_draft(owner_id=request.owner_id, bot_id=request.bot_id)
        return draft_to_proto(draft)

    @translate_errors
    async def ListDrafts(
        self, request: pb.ListDraftsRequest, context: Any
    ) -> pb.ListDraftsResponse:
        page = await self._bots.list_drafts(
            owner_id=request.owner_id,
            space_id=request.space_id,
            page=PageRequest.of(request.page_size, request.page_num),
        )
        return pb.ListDraftsResponse(bots=[draft_to_proto(d) for d in page.items], total=page.total)

    @translate_errors
    async def DeleteDraft(self, request: pb.BotRef, context: Any) -> pb.Empty:
        await self._bots.delete_draft(owner_id=request.owner_id, bot_id=request.bot_id)
        return pb.Empty()

    @translate_errors
    async def Publish(self, request: pb.BotRef, context: Any) -> pb.BotVersion:
        version = await self._bots.publish(owner_id=request.owner_id, bot_id=request.bot_id)
        return version_to_proto(version)

    @translate_errors
    async def GetVersion(self, request: pb.GetVersionRequest, context: Any) -> pb.BotVersion:
        version = await self._bots.get_version(
            owner_id=request.owner_id, bot_id=request.bot_id, version=request.version
        )
        return version_to_proto(version)

    @translate_errors
    async def ListVersions(self, request: pb.BotRef, context: Any) -> pb.ListVersionsResponse:
        versions = await self._bots.list_versions(owner_id=request.owner_id, bot_id=request.bot_id)
        return pb.ListVersionsResponse(versions=[version_to_proto(v) for v in versions])

    @translate_errors
    async def ListPublished(
        self, request: pb.ListPublishedRequest, context: Any
    ) -> pb.ListPublishedResponse:
        page = await self._bots.list_published(
            owner_id=request.owner_id,
            space_id=request.space_id,
            page=PageRequest.of(request.page_size, request.page_num),
        )
        return pb.ListPublishedResponse(
            versions=[version_to_proto(v) for v in page.items], total=page.total
        )


def config_from_proto(message: pb.BotConfig) -> bots.BotConfig:
    model = message.model
    return bots.BotConfig(
        prompt=message.prompt,
        model=bots.ModelSettings(
            model_id=model.model_id,
            temperature=model.temperature if model.HasField("temperature") else None,
            max_tokens=model.max_tokens if model.HasField("max_tokens") else None,
            top_p=model.top_p if model.HasField("top_p") else None,
        ),
        history_rounds=message.history_rounds,
        max_tool_rounds=message.max_tool_rounds,
        onboarding=bots.Onboarding(
            prologue=message.onboarding.prologue,
            suggested_questions=tuple(message.onboarding.suggested_questions),
        ),
        variables=tuple(
            bots.Variable(key=v.key, description=v.description, default_value=v.default_value)
            for v in message.variables
        ),
        tools=tuple(
            bots.ToolRef(
                type=t.type,
                knowledge_id=t.knowledge_id,
                plugin_id=t.plugin_id,
                api_id=t.api_id,
                api_name=t.api_name,
            )
            for t in message.tools
        ),
    )


def config_to_proto(config: bots.BotConfig) -> pb.BotConfig:
    model = pb.ModelSettings(model_id=config.model.model_id)
    if config.model.temperature is not None:
        model.temperature = config.model.temperature
    if config.model.max_tokens is not None:
        model.max_tokens = config.model.max_tokens
    if config.model.top_p is not None:
        model.top_p = config.model.top_p
    return pb.BotConfig(
        prompt=config.prompt,
        model=model,
        history_rounds=config.history_rounds,
        max_tool_rounds=config.max_tool_rounds,
        onboarding=pb.Onboarding(
            prologue=config.onboarding.prologue,
            suggested_questions=config.onboarding.suggested_questions,
        ),
        variables=[
            pb.Variable(key=v.key, description=v.description, default_value=v.default_value)
            for v in config.variables
        ],
        tools=[
            pb.ToolRef(
                type=t.type,
                knowledge_id=t.knowledge_id,
                plugin_id=t.plugin_id,
                api_id=t.api_id,
                api_name=t.api_name,
            )
            for t in config.tools
        ],
    )


def draft_to_proto(draft: bots.Draft) -> pb.Bot:
    return pb.Bot(
        id=draft.id,
        owner_id=draft.owner_id,
        space_id=draft.space_id,
        name=draft.name,
        description=draft.description,
        icon_url=draft.icon_url,
        config=config_to_proto(draft.config),
        created_at=draft.created_at,
        updated_at=draft.updated_at,
        latest_version=draft.latest_version,
        published_at=draft.published_at,
    )


def version_to_proto(version: bots.PublishedVersion) -> pb.BotVersion:
    return pb.BotVersion(
        bot_id=version.bot_id,
        version=version.version,
        owner_id=version.owner_id,
        space_id=version.space_id,
        name=version.name,
        description=version.description,
        icon_url=version.icon_url,
        config=config_to_proto(version.config),
        published_at=version.published_at,
        created_at=version.created_at,
        updated_at=version.updated_at,
    )


# -------------------------------------------------------------- accounts


class AccountsServicer(pb_grpc.AccountsServicer):
    def __init__(self, service: AccountService) -> None:
        self._accounts = service

    @translate_errors
    async def CreateUser(self, request: pb.CreateUserRequest, context: Any) -> pb.User:
        user = await self._accounts.create_user(
            username=request.username,
            password=request.password,
            display_name=request.display_name,
            email=request.email,
        )
        return user_to_proto(user)

    @translate_errors
    async def GetUser(self, request: pb.GetUserRequest, context: Any) -> pb.User:
        user = await self._accounts.get_user(user_id=request.id, username=request.username)
        return user_to_proto(user)

    @translate_errors
    async def Login(self, request: pb.LoginRequest, context: Any) -> pb.LoginResponse:
        result = await self._accounts.login(username=request.username, password=request.password)
        return pb.LoginResponse(
            session_key=result.session_key,
            user=user_to_proto(result.user),
            expires_at=result.expires_at,
        )

    @translate_errors
    async def Logout(self, request: pb.SessionRef, context: Any) -> pb.Empty:
        await self._accounts.logout(session_key=request.session_key)
        return pb.Empty()

    @translate_errors
    async def Authenticate(self, request: pb.AuthenticateRequest, context: Any) -> pb.Principal:
        principal = await self._accounts.authenticate(token=request.token)
        return pb.Principal(
            user=user_to_proto(principal.user),
            kind=principal.kind,
            credential_id=principal.credential_id,
            expires_at=principal.expires_at,
        )

    @translate_errors
    async def CreateApiKey(
        self, request: pb.CreateApiKeyRequest, context: Any
    ) -> pb.CreateApiKeyResponse:
        key, token = await self._accounts.create_api_key(
            user_id=request.user_id, name=request.name, expires_in=request.expires_in
        )
        return pb.CreateApiKeyResponse(key=api_key_to_proto(key), token=token)

    @translate_errors
    async def ListApiKeys(
        self, request: pb.ListApiKeysRequest, context: Any
    ) -> pb.ListApiKeysResponse:
        page = await self._accounts.list_api_keys(
            user_id=request.user_id, page=PageRequest.of(request.page_size, request.page_num)
        )
        return pb.ListApiKeysResponse(
            keys=[api_key_to_proto(k) for k in page.items], total=page.total
        )

    @translate_errors
    async def GetApiKey(self, request: pb.ApiKeyRef, context: Any) -> pb.ApiKey:
        key = await self._accounts.get_api_key(user_id=request.user_id, key_id=request.key_id)
        return api_key_to_proto(key)

    @translate_errors
    async def UpdateApiKey(self, request: pb.UpdateApiKeyRequest, context: Any) -> pb.ApiKey:
        key = await self._accounts.update_api_key(
            user_id=request.user_id, key_id=request.key_id, name=request.name
        )
        return api_key_to_proto(key)

    @translate_errors
    async def RevokeApiKey(self, request: pb.ApiKeyRef, context: Any) -> pb.Empty:
        await self._accounts.revoke_api_key(user_id=request.user_id, key_id=request.key_id)
        return pb.Empty()

    @translate_errors
    async def DeleteUser(
        self, request: pb.DeleteUserRequest, context: Any
    ) -> pb.DeleteUserResponse:
        revoked = await self._accounts.delete_user(user_id=request.user_id)
        return pb.DeleteUserResponse(revoked_credentials=revoked)


def user_to_proto(user: accounts.UserView) -> pb.User:
    return pb.User(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        created_at=user.created_at,
        email=user.email,
    )


def api_key_to_proto(key: accounts.ApiKeyView) -> pb.ApiKey:
    return pb.ApiKey(
        id=key.id,
        user_id=key.user_id,
        name=key.name,
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        prefix=key.prefix,
        revoked=key.revoked,
    )
