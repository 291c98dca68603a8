"""Who is asking: `CurrentUser`, `AdminUser`, `SupportUser`; and the shared `RateLimiterDep`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import ResourcesDep, SessionDep, SettingsDep
from api.http.ratelimit import RATE_LIMIT_HEADERS, RequestRateLimiter
from api.problems import DEPENDENCY_ERRORS, DEPENDENCY_HEADERS
from evently import accounts
from evently.db.models import User
from evently.enums import Role
from evently.errors import Forbidden, InvalidToken, TokenExpired, Unauthorized
from evently.ratelimit import RateLimiter
from evently.security import AccessClaims, decode_access_token

_bearer = HTTPBearer(auto_error=False)


async def current_claims(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AccessClaims:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Send 'Authorization: Bearer <access token>'.")
    claims = decode_access_token(settings, credentials.credentials)
    structlog.contextvars.bind_contextvars(user_id=str(claims.user_id))
    return claims


# The signed, short-lived access token alone (no database read): for the reserve hot path,
# where a user lookup per request would make the connection pool the bottleneck of a rush.
# A deactivated account keeps this for at most EVENTLY_ACCESS_TOKEN_MINUTES.
TokenClaims = Annotated[AccessClaims, Depends(current_claims)]


async def current_user(session: SessionDep, claims: TokenClaims) -> User:
    user = await accounts.active_user(session, claims.user_id)
    if user is None:
        raise InvalidToken("The access token is invalid.")
    structlog.contextvars.bind_contextvars(user_id=str(user.id))  # every later log line has it
    return user


CurrentUser = Annotated[User, Depends(current_user)]

DEPENDENCY_ERRORS[current_claims] = (Unauthorized, InvalidToken, TokenExpired)


async def optional_claims(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AccessClaims | None:
    """The access token's claims when one is sent (a bad one is 401), else None."""
    if credentials is None:
        return None
    if credentials.scheme.lower() != "bearer":
        raise Unauthorized("Send 'Authorization: Bearer <access token>'.")
    return decode_access_token(settings, credentials.credentials)


#: the claims when a bearer token is sent (guest checkout, issue 32: none is fine)
OptionalClaims = Annotated[AccessClaims | None, Depends(optional_claims)]
DEPENDENCY_ERRORS[optional_claims] = (Unauthorized, InvalidToken, TokenExpired)


def require_roles(*roles: Role) -> Callable[[User], Awaitable[User]]:
    async def _dep(user: CurrentUser) -> User:
        if user.role not in roles:
            raise Forbidden(f"This needs the {' or '.join(roles)} role.")
        return user

    DEPENDENCY_ERRORS[_dep] = (Forbidden,)
    return _dep


AdminUser = Annotated[User, Depends(require_roles(Role.ADMIN))]
SupportUser = Annotated[User, Depends(require_roles(Role.SUPPORT, Role.ADMIN))]
DoorUser = Annotated[User, Depends(require_roles(Role.DOOR, Role.ADMIN))]  # ticket scanning


async def get_rate_limiter(request: Request, res: ResourcesDep) -> RequestRateLimiter:
    """One limiter per app (it remembers a Redis outage for its cooldown), on the app's Redis,
    bound to the request so that its hits become the answer's ``RateLimit`` fields."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None or limiter.redis is not res.redis:
        limiter = RateLimiter(res.redis)
        request.app.state.rate_limiter = limiter
    return RequestRateLimiter(limiter, request.scope)


RateLimiterDep = Annotated[RequestRateLimiter, Depends(get_rate_limiter)]

DEPENDENCY_HEADERS[get_rate_limiter] = (RATE_LIMIT_HEADERS, False)


def client_ip(request: Request) -> str:
    """The caller's address: behind trusted proxies, the real client's (api/proxies.py)."""
    return request.client.host if request.client else "unknown"
