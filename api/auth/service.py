"""Sign up, log in, refresh, log out: the one service behind ``POST /auth/*`` and the
storefront's forms and cookie session (README "Storefront").

Both ways in take the same input models (:mod:`api.auth.schemas`: NUL bytes, lone surrogates
and, in names, control characters are refused), count against the same rate-limit keys
(``login:ip:…``, ``login:email:…``, ``register:…``: one budget per address and email whichever
way a client comes), and use the same account and token rules. A page is never an easier way in
than the API. The SQL is in the core (:mod:`evently.accounts`, :mod:`evently.tokens`); the
caller's session dependency commits (flush only here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.auth.schemas import LoginRequest, RegisterRequest
from api.http.ratelimit import RequestRateLimiter
from evently import accounts, live, tokens
from evently.db.models import User
from evently.errors import Unprocessable
from evently.ratelimit import hashed
from evently.security import create_access_token
from evently.settings import Settings

Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class SignedIn:
    """A new session: the user, a short-lived access token and the session's refresh token."""

    user: User
    access_token: str
    refresh: tokens.IssuedRefreshToken


def parse(model: type[Model], fields: Mapping[str, str]) -> Model:
    """Input that does not arrive as a JSON body (a form) through the API's own model: the same
    checks, and the same ``422 validation_error`` detail (``field: why``) the API answers."""
    try:
        return model.model_validate({name: fields.get(name, "") for name in model.model_fields})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "request"
        why = str(first["msg"]).removeprefix("Value error, ")
        raise Unprocessable(f"{where}: {why}") from exc


async def _limit(
    limiter: RequestRateLimiter, settings: Settings, action: str, limit: int, ip: str, email: str
) -> None:
    window = settings.rate_limit_window_seconds
    detail = f"Too many {action} attempts."
    await limiter.enforce(f"{action}:ip:{ip}", limit, window, detail=detail)
    await limiter.enforce(f"{action}:email:{hashed(email)}", limit, window, detail=detail)


def _signed_in(settings: Settings, user: User, refresh: tokens.IssuedRefreshToken) -> SignedIn:
    access, _ = create_access_token(settings, user.id, user.role, refresh.family_id)
    return SignedIn(user, access, refresh)


async def register(
    session: AsyncSession,
    settings: Settings,
    limiter: RequestRateLimiter,
    ip: str,
    body: RegisterRequest,
) -> SignedIn:
    """A new **buyer** account, signed in (admin and support accounts come from the CLI)."""
    email = accounts.normalize_email(body.email)
    await _limit(limiter, settings, "register", settings.register_rate_limit, ip, email)
    user = await accounts.create_user(
        session, email, body.password, role="buyer", full_name=body.full_name
    )
    return _signed_in(settings, user, await tokens.issue(session, settings, user.id))


async def log_in(
    session: AsyncSession,
    settings: Settings,
    limiter: RequestRateLimiter,
    ip: str,
    body: LoginRequest,
) -> SignedIn:
    """Email and password → a new session (a new refresh-token family)."""
    email = accounts.normalize_email(body.email)
    await _limit(limiter, settings, "login", settings.login_rate_limit, ip, email)
    user = await accounts.authenticate(session, email, body.password)
    return _signed_in(settings, user, await tokens.issue(session, settings, user.id))


async def refresh(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    refresh_token: str,
) -> SignedIn:
    """Spend a refresh token for a new pair. Reusing a spent one revokes its whole family: that
    revocation commits on its own (``sessionmaker``), since the 401 rolls the request back."""
    try:
        rotation = await tokens.rotate(session, settings, refresh_token)
    except tokens.RefreshTokenReused as exc:
        await tokens.revoke_family_now(sessionmaker, exc)
        raise
    return _signed_in(settings, rotation.user, rotation.refresh)


async def log_out(session: AsyncSession, redis: Redis, refresh_token: str | None) -> None:
    """Revoke the session (the refresh token's family); nothing to do without one. The
    session's live streams (``GET /users/stream``) end at once (a logout notice on the user's
    channel)."""
    if not refresh_token:
        return
    owner = await tokens.family_of(session, refresh_token)
    await tokens.revoke_family_of(session, refresh_token)
    if owner is not None:
        await live.publish_logout(redis, *owner)
