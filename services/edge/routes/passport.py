"""Browser sessions: register, log in (sets the `session_key` cookie), log out, who am I."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response

from cozeplus.rpc.v1 import registry_pb2 as pb
from services.edge.auth import SESSION_COOKIE, CurrentCredentials, CurrentUser, SameOrigin
from services.edge.errors import ApiError
from services.edge.runtime import EdgeRuntime, Runtime
from services.edge.schemas.accounts import (
    LoginRequest,
    MeView,
    RegisterRequest,
    SessionUserView,
    SessionView,
)
from services.edge.schemas.common import ERROR_RESPONSES, EmptyData, Envelope, ok

router = APIRouter(prefix="/api/passport", tags=["passport"], responses=ERROR_RESPONSES)


def _user_view(user: pb.User) -> SessionUserView:
    return SessionUserView(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        created_at=user.created_at,
        email=user.email,
    )


async def _log_in(
    runtime: EdgeRuntime, response: Response, username: str, password: str
) -> SessionView:
    login = await runtime.registry.accounts.Login(
        pb.LoginRequest(username=username, password=password)
    )
    max_age = max(0, login.expires_at - int(time.time())) if login.expires_at else None
    response.set_cookie(
        SESSION_COOKIE,
        login.session_key,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=runtime.settings.cookie_secure,
    )
    return SessionView(user=_user_view(login.user), expires_at=login.expires_at)


# Login and register carry no cookie yet, but a foreign page must not be able to log the
# browser into an account of its choosing either.
@router.post("/register", dependencies=[SameOrigin], summary="Create an account and log in")
async def register(
    body: RegisterRequest, response: Response, runtime: Runtime
) -> Envelope[SessionView]:
    user = await runtime.registry.accounts.CreateUser(
        pb.CreateUserRequest(
            username=body.username or "",
            email=body.email or "",
            password=body.password,
            display_name=body.display_name,
        )
    )
    return ok(await _log_in(runtime, response, user.username, body.password))


@router.post("/login", dependencies=[SameOrigin], summary="Log in; sets the session_key cookie")
async def login(body: LoginRequest, response: Response, runtime: Runtime) -> Envelope[SessionView]:
    return ok(await _log_in(runtime, response, body.login_name, body.password))


@router.post("/logout", summary="End the current session")
async def logout(
    credentials: CurrentCredentials, response: Response, runtime: Runtime
) -> Envelope[EmptyData]:
    if credentials.principal.kind != "session":
        raise ApiError(
            400,
            "logout ends a session; revoke an API key with "
            "/api/permission_api/pat/delete_personal_access_token_and_permission",
        )
    await runtime.registry.accounts.Logout(pb.SessionRef(session_key=credentials.token))
    runtime.authenticator.evict_credential(credentials.principal.credential_id)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=runtime.settings.cookie_secure,
    )
    return ok(EmptyData())


@router.get("/me", summary="The authenticated account")
async def me(user: CurrentUser) -> Envelope[MeView]:
    return ok(
        MeView(
            user_id=user.user_id,
            username=user.username,
            display_name=user.display_name,
            created_at=user.user_created_at,
            auth_kind=user.kind,
        )
    )
