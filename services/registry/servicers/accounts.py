"""The Accounts gRPC servicer: proto messages in, domain calls, proto messages out. Domain
errors become status codes in one place, services/registry/servicers/errors.py."""

from __future__ import annotations

from typing import Any

from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1 import registry_pb2_grpc as pb_grpc
from services.registry import accounts
from services.registry.accounts import AccountService
from services.registry.paging import PageRequest


class AccountsServicer(pb_grpc.AccountsServicer):
    def __init__(self, service: AccountService) -> None:
        self._accounts = service

    async def CreateUser(self, request: pb.CreateUserRequest, context: Any) -> pb.User:
        user = await self._accounts.create_user(
            username=request.username,
            password=request.password,
            display_name=request.display_name,
            email=request.email,
        )
        return user_to_proto(user)

    async def GetUser(self, request: pb.GetUserRequest, context: Any) -> pb.User:
        user = await self._accounts.get_user(user_id=request.id, username=request.username)
        return user_to_proto(user)

    async def Login(self, request: pb.LoginRequest, context: Any) -> pb.LoginResponse:
        result = await self._accounts.login(username=request.username, password=request.password)
        return pb.LoginResponse(
            session_key=result.session_key,
            user=user_to_proto(result.user),
            expires_at=result.expires_at,
        )

    async def Logout(self, request: pb.SessionRef, context: Any) -> pb.Empty:
        await self._accounts.logout(session_key=request.session_key)
        return pb.Empty()

    async def Authenticate(self, request: pb.AuthenticateRequest, context: Any) -> pb.Principal:
        principal = await self._accounts.authenticate(token=request.token)
        return pb.Principal(
            user=user_to_proto(principal.user),
            kind=principal.kind,
            credential_id=principal.credential_id,
            expires_at=principal.expires_at,
        )

    async def CreateApiKey(
        self, request: pb.CreateApiKeyRequest, context: Any
    ) -> pb.CreateApiKeyResponse:
        key, token = await self._accounts.create_api_key(
            user_id=request.user_id, name=request.name, expires_in=request.expires_in
        )
        return pb.CreateApiKeyResponse(key=api_key_to_proto(key), token=token)

    async def ListApiKeys(
        self, request: pb.ListApiKeysRequest, context: Any
    ) -> pb.ListApiKeysResponse:
        page = await self._accounts.list_api_keys(
            user_id=request.user_id, page=PageRequest.of(request.page_size, request.page_num)
        )
        return pb.ListApiKeysResponse(
            keys=[api_key_to_proto(k) for k in page.items], total=page.total
        )

    async def GetApiKey(self, request: pb.ApiKeyRef, context: Any) -> pb.ApiKey:
        key = await self._accounts.get_api_key(user_id=request.user_id, key_id=request.key_id)
        return api_key_to_proto(key)

    async def UpdateApiKey(self, request: pb.UpdateApiKeyRequest, context: Any) -> pb.ApiKey:
        key = await self._accounts.update_api_key(
            user_id=request.user_id, key_id=request.key_id, name=request.name
        )
        return api_key_to_proto(key)

    async def RevokeApiKey(self, request: pb.ApiKeyRef, context: Any) -> pb.Empty:
        await self._accounts.revoke_api_key(user_id=request.user_id, key_id=request.key_id)
        return pb.Empty()

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
