"""POST /auth/register, /auth/login, /auth/refresh, /auth/logout."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from api.auth.deps import RateLimiterDep, client_ip
from api.auth.schemas import (
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
    TokenResponse,
    UserOut,
)
from api.deps import ResourcesDep, SessionDep, SettingsDep
from api.http.ratelimit import RequestRateLimiter
from api.problems import problem_responses
from evently import accounts, live, tokens
from evently.db.models import User
from evently.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidEmail,
    InvalidToken,
    TokenExpired,
    TokenReused,
    TokenRevoked,
    TooManyRequests,
    WeakPassword,
)
from evently.ratelimit import hashed
from evently.security import create_access_token
from evently.settings import Settings

router = APIRouter(prefix="/auth", tags=["auth"])


async def _limit(
    limiter: RequestRateLimiter, settings: Settings, action: str, limit: int, ip: str, email: str
) -> None:
    window = settings.rate_limit_window_seconds
    detail = f"Too many {action} attempts."
    await limiter.enforce(f"{action}:ip:{ip}", limit, window, detail=detail)
    await limiter.enforce(f"{action}:email:{hashed(email)}", limit, window, detail=detail)


def _token_pair(
    settings: Settings, user: User, refresh: tokens.IssuedRefreshToken
) -> TokenResponse:
    access, _ = create_access_token(settings, user.id, user.role, refresh.family_id)
    return TokenResponse(
        access_token=access,
        refresh_token=refresh.token,
        expires_in=settings.access_token_minutes * 60,
        refresh_expires_in=refresh.expires_in,
        user=UserOut.of(user),
    )


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenResponse,
    responses=problem_responses(InvalidEmail, WeakPassword, EmailTaken, TooManyRequests),
)
async def register(
    body: RegisterRequest,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> TokenResponse:
    """Create a **buyer** account and log it in. Admin and support accounts come from the CLI."""
    email = accounts.normalize_email(body.email)
    await _limit(
        limiter, settings, "register", settings.register_rate_limit, client_ip(request), email
    )
    user = await accounts.create_user(
        session, email, body.password, role="buyer", full_name=body.full_name
    )
    refresh = await tokens.issue(session, settings, user.id)
    return _token_pair(settings, user, refresh)


@router.post(
    "/login",
    response_model=TokenResponse,
    responses=problem_responses(InvalidCredentials, InvalidEmail, TooManyRequests),
)
async def login(
    body: LoginRequest,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> TokenResponse:
    """Email and password → a new token pair (a new refresh-token family)."""
    email = accounts.normalize_email(body.email)
    await _limit(limiter, settings, "login", settings.login_rate_limit, client_ip(request), email)
    user = await accounts.authenticate(session, email, body.password)
    refresh = await tokens.issue(session, settings, user.id)
    return _token_pair(settings, user, refresh)


@router.post(
    "/refresh",
    response_model=TokenResponse,
    responses=problem_responses(InvalidToken, TokenExpired, TokenRevoked, TokenReused),
)
async def refresh(
    body: RefreshRequest, session: SessionDep, settings: SettingsDep, res: ResourcesDep
) -> TokenResponse:
    """Spend a refresh token for a new pair. Reusing a spent one revokes its whole family."""
    try:
        rotation = await tokens.rotate(session, settings, body.refresh_token)
    except tokens.RefreshTokenReused as exc:
        # the 401 rolls this request back; the revocation must stay, so it commits on its own
        await tokens.revoke_family_now(res.sessionmaker, exc)
        raise
    return _token_pair(settings, rotation.user, rotation.refresh)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def logout(body: RefreshRequest, session: SessionDep, res: ResourcesDep) -> Response:
    """Revoke the presented refresh token's session (its family). Idempotent: always 204.
    The session's live streams (``GET /users/stream``) end."""
    owner = await tokens.family_of(session, body.refresh_token)
    await tokens.revoke_family_of(session, body.refresh_token)
    if owner is not None:
        await live.publish_logout(res.redis, *owner)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
