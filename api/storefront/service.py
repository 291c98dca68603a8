"""The storefront's session rules: who is visiting, log in, sign up, log out.

Log-in and sign-up count against the same rate-limit buckets as ``POST /auth/login`` and
``POST /auth/register`` (same keys), and use the same account and token services, so a page
is never an easier way in than the API.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from api.http.ratelimit import RequestRateLimiter
from evently import accounts, tokens
from evently.db.models import User
from evently.errors import Unauthorized
from evently.infra.resources import Resources
from evently.ratelimit import hashed
from evently.security import create_access_token, decode_access_token
from evently.settings import Settings


@dataclass
class Visit:
    """Who is asking, from the cookies; ``cookies``: what the answer must set (``None``:
    delete)."""

    user_id: uuid.UUID | None
    nonce: str | None
    cookies: dict[str, tuple[str, int] | None] = field(default_factory=dict)


@dataclass(frozen=True)
class SignedIn:
    user: User
    refresh_token: str
    access_token: str


async def resume(
    session: AsyncSession, res: Resources, access: str | None, refresh: str | None
) -> tuple[uuid.UUID | None, SignedIn | None, bool]:
    """The visitor's user id from the access cookie; when it has lapsed, the session's refresh
    token is rotated (a new pair to set). Returns ``(user_id, new pair or None, clear)``;
    ``clear``: the session is over (revoked, expired, reused) and its cookies must go."""
    settings = res.settings
    if access:
        try:
            return decode_access_token(settings, access).user_id, None, False
        except Unauthorized:
            pass
    if not refresh:
        return None, None, False
    try:
        rotation = await tokens.rotate(session, settings, refresh)
    except tokens.RefreshTokenReused as exc:
        # the same rule as POST /auth/refresh: a reused token ends its whole family
        await tokens.revoke_family_now(res.sessionmaker, exc)
        return None, None, True
    except Unauthorized:
        return None, None, True
    user = rotation.user
    access_token, _ = create_access_token(settings, user.id, user.role, rotation.refresh.family_id)
    return user.id, SignedIn(user, rotation.refresh.token, access_token), False


async def _limit(
    limiter: RequestRateLimiter, settings: Settings, action: str, limit: int, ip: str, email: str
) -> None:
    # the keys of api/auth/endpoints.py: pages and API share one budget per address and email
    window = settings.rate_limit_window_seconds
    detail = f"Too many {action} attempts; wait a minute and try again."
    await limiter.enforce(f"{action}:ip:{ip}", limit, window, detail=detail)
    await limiter.enforce(f"{action}:email:{hashed(email)}", limit, window, detail=detail)


async def log_in(
    session: AsyncSession,
    settings: Settings,
    limiter: RequestRateLimiter,
    ip: str,
    email: str,
    password: str,
) -> SignedIn:
    email = accounts.normalize_email(email)
    await _limit(limiter, settings, "login", settings.login_rate_limit, ip, email)
    user = await accounts.authenticate(session, email, password)
    return await _signed_in(session, settings, user)


async def sign_up(
    session: AsyncSession,
    settings: Settings,
    limiter: RequestRateLimiter,
    ip: str,
    email: str,
    password: str,
    full_name: str,
) -> SignedIn:
    email = accounts.normalize_email(email)
    await _limit(limiter, settings, "register", settings.register_rate_limit, ip, email)
    user = await accounts.create_user(
        session, email, password, role="buyer", full_name=full_name or ""
    )
    return await _signed_in(session, settings, user)


async def _signed_in(session: AsyncSession, settings: Settings, user: User) -> SignedIn:
    refresh = await tokens.issue(session, settings, user.id)
    access, _ = create_access_token(settings, user.id, user.role, refresh.family_id)
    return SignedIn(user, refresh.token, access)


async def log_out(session: AsyncSession, refresh: str | None) -> None:
    if refresh:
        await tokens.revoke_family_of(session, refresh)
