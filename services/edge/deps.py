"""Every FastAPI dependency of the edge, in one place (like the FastAPI full-stack template's
api/deps.py): the runtime, who is calling, and which rate-limit class a router's requests
count against.

Rate limits: each router declares its class with `dependencies=[RateLimitClass(...)]`; the
class goes on the request state, and the request is counted once the caller's account is
known (in `current_credentials`). Routers that declare none count as `other`.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from services.edge.auth import SESSION_COOKIE, UNSAFE_METHODS, check_same_origin
from services.edge.core.auth import Credentials, Principal, unauthorized
from services.edge.core.errors import RateLimited
from services.edge.errors import TOO_MANY_REQUESTS_MSG
from services.edge.middleware import RATE_LIMIT_STATE
from services.edge.rate_limit import LimitClass
from services.edge.runtime import EdgeRuntime

# Key in the request state holding the class a router declared.
_LIMIT_CLASS_STATE = "rate_limit_class"


# Dependencies are `async def` even when they never await: FastAPI runs a plain `def`
# dependency on its thread pool, a thread hand-off on every request (seen in profiles).
async def get_runtime(request: Request) -> EdgeRuntime:
    return cast(EdgeRuntime, request.app.state.runtime)


Runtime = Annotated[EdgeRuntime, Depends(get_runtime)]


def RateLimitClass(limit_class: LimitClass) -> DependsParam:
    """A router's rate-limit class (wire contract section 6), as a router dependency."""

    async def declare(request: Request) -> LimitClass:
        declare_limit_class(request, limit_class)
        return limit_class

    marker: DependsParam = Depends(declare)
    return marker


def declare_limit_class(request: Request, limit_class: LimitClass) -> None:
    setattr(request.state, _LIMIT_CLASS_STATE, limit_class)


def declared_limit_class(request: Request) -> LimitClass:
    limit_class = getattr(request.state, _LIMIT_CLASS_STATE, None)
    return limit_class if isinstance(limit_class, LimitClass) else LimitClass.OTHER


_bearer_scheme = HTTPBearer(
    auto_error=False, description="An API key (`pat_...`) or a session key."
)
_cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="Set by /api/passport/login."
)


async def current_credentials(
    request: Request,
    runtime: Runtime,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
    cookie: Annotated[str | None, Depends(_cookie_scheme)],
) -> Credentials:
    if bearer is not None:
        token, from_cookie = bearer.credentials.strip(), False
    elif request.headers.get("authorization") is not None:
        raise unauthorized("malformed Authorization header: expected 'Bearer <api key>'")
    elif cookie:
        token, from_cookie = cookie, True
    else:
        raise unauthorized("missing credentials: send 'Authorization: Bearer <api key>'")
    if from_cookie and request.method in UNSAFE_METHODS:
        check_same_origin(request, runtime.settings.allowed_origins)
    principal = await authenticate_and_count(request, runtime, token)
    return Credentials(principal=principal, token=token, from_cookie=from_cookie)


async def authenticate_and_count(request: Request, runtime: EdgeRuntime, token: str) -> Principal:
    """Who the token is, with the request counted against that account's limit."""
    principal = await runtime.authenticator.authenticate(token)
    await _count_request(request, runtime, principal.user_id)
    return principal


async def _count_request(request: Request, runtime: EdgeRuntime, account_id: int) -> None:
    """Counts the request against its account's limit. Here, because this is the first point
    that knows the account; the decision goes on the request state, from where
    RequestContextMiddleware puts X-RateLimit-* on the response, whatever that turns out to
    be."""
    limiter = runtime.rate_limiter
    if limiter is None:
        return
    decision = await limiter.hit(account_id, declared_limit_class(request))
    setattr(request.state, RATE_LIMIT_STATE, decision)
    if not decision.allowed:
        raise RateLimited(TOO_MANY_REQUESTS_MSG, decision.reset_after_s)


async def current_principal(
    credentials: Annotated[Credentials, Depends(current_credentials)],
) -> Principal:
    return credentials.principal


async def same_origin(request: Request, runtime: Runtime) -> None:
    check_same_origin(request, runtime.settings.allowed_origins)


CurrentCredentials = Annotated[Credentials, Depends(current_credentials)]
CurrentUser = Annotated[Principal, Depends(current_principal)]
SameOrigin = Depends(same_origin)
