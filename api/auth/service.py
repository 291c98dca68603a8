"""Sign up, log in, refresh, log out: the one service behind ``POST /auth/*`` and the
storefront's forms and cookie session (docs/storefront.md).

Both ways in take the same input models (:mod:`api.auth.schemas`: NUL bytes, lone surrogates
and, in names, control characters are refused), count against the same rate-limit keys (one
budget per address and email whichever way a client comes), and use the same account and token
rules. A page is never an easier way in than the API. The SQL is in the core
(:mod:`evently.accounts`, :mod:`evently.tokens`); the caller's session dependency commits
(flush only here).

Log-in limits (issue 28: nobody can lock an account out from elsewhere):

- ``login:ip:<address>`` and ``login:ipemail:<address>:<email digest>``: every attempt, counted
  *before* the (costly) password check, ``EVENTLY_LOGIN_RATE_LIMIT`` per window. They stop
  the address that guesses, never the account's owner at another address.
- ``login:email:<digest>``: *failures* only, counted *after* the password check, across all
  addresses (``EVENTLY_LOGIN_EMAIL_FAILURE_LIMIT``). Beyond it a wrong password is answered
  ``429`` after ``EVENTLY_LOGIN_FAILURE_DELAY_SECONDS`` (a slowdown for guessers spread over
  many addresses); the right password is never refused by it.

Sign-up reveals nothing: a new and a taken email get the same 202 answer, the same work
(the password is hashed either way) and a mail that differs (welcome / "you already have an
account"); nobody is signed in by it, the client logs in next. The welcome carries the
address's verification link (:func:`verify_email`); the other mail points at the reset.

Account recovery (issue 32, docs/buyers.md): :func:`request_password_reset` answers the same
for every email (a mail goes only to an existing account), limited per email and per address
*before* the lookup; :func:`reset_password` spends the mailed single-use token, sets the new
password and signs the account out everywhere (every refresh token revoked, its live streams
ended).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.auth.schemas import (
    LoginRequest,
    PasswordResetConfirm,
    PasswordResetRequest,
    RegisterRequest,
    VerifyEmailRequest,
)
from api.http.ratelimit import RequestRateLimiter
from evently import accounts, live, tokens
from evently.db.models import User
from evently.errors import InvalidCredentials, Unprocessable
from evently.ratelimit import check, hashed
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


LOGIN_DETAIL = "Too many login attempts."


def _signed_in(settings: Settings, user: User, refresh: tokens.IssuedRefreshToken) -> SignedIn:
    access, _ = create_access_token(settings, user.id, user.role, session_id=refresh.family_id)
    return SignedIn(user, access, refresh)


async def register(
    session: AsyncSession,
    settings: Settings,
    limiter: RequestRateLimiter,
    ip: str,
    body: RegisterRequest,
) -> None:
    """Sign up for a **buyer** account (admin and support accounts come from the CLI).

    Returns nothing, the same for a new and a taken email (see the module docstring): the
    mail tells the address's owner which it was; the client logs in next."""
    email = accounts.normalize_email(body.email)
    window = settings.rate_limit_window_seconds
    limit, detail = settings.register_rate_limit, "Too many register attempts."
    await limiter.enforce(f"register:ip:{ip}", limit, window, detail=detail)
    await limiter.enforce(f"register:email:{hashed(email)}", limit, window, detail=detail)
    await accounts.sign_up(session, settings, email, body.password, full_name=body.full_name)


async def log_in(
    session: AsyncSession,
    settings: Settings,
    limiter: RequestRateLimiter,
    ip: str,
    body: LoginRequest,
) -> SignedIn:
    """Email and password → a new session (a new refresh-token family). The limits: see the
    module docstring."""
    email = accounts.normalize_email(body.email)
    window, limit, digest = (
        settings.rate_limit_window_seconds,
        settings.login_rate_limit,
        hashed(email),
    )
    await limiter.enforce(f"login:ip:{ip}", limit, window, detail=LOGIN_DETAIL)
    await limiter.enforce(f"login:ipemail:{ip}:{digest}", limit, window, detail=LOGIN_DETAIL)
    try:
        user = await accounts.authenticate(session, email, body.password)
    except InvalidCredentials:
        failures = await limiter.hit(
            f"login:email:{digest}", settings.login_email_failure_limit, window
        )
        if failures.exceeded:
            await asyncio.sleep(settings.login_failure_delay_seconds)
            check(failures, detail=LOGIN_DETAIL)
        raise
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
    # reproducible (a retry within the grace window gets this very pair): iat = the rotation
    user, refresh = rotation.user, rotation.refresh
    access, _ = create_access_token(
        settings,
        user.id,
        user.role,
        session_id=refresh.family_id,
        issued_at=min(rotation.rotated_at, datetime.now(UTC)),
        jti=tokens.access_jti(refresh.token),
    )
    return SignedIn(user, access, refresh)


async def session_of(session: AsyncSession, refresh_token: str) -> uuid.UUID | None:
    """The session (refresh-token family) a refresh token belongs to, spent or not."""
    return await tokens.family_of(session, refresh_token)


async def log_out(session: AsyncSession, redis: Redis, refresh_token: str | None) -> None:
    """Revoke the session (the refresh token's family); nothing to do without one. The
    session's live streams (``GET /users/stream``) end at once (a logout notice on the user's
    channel)."""
    if not refresh_token:
        return
    owner = await tokens.owner_of(session, refresh_token)
    await tokens.revoke_family_of(session, refresh_token)
    if owner is not None:
        await live.publish_logout(redis, *owner)


# ---- account recovery and verification (issue 32) ----------------------------------------------

RESET_DETAIL = "Too many password reset requests."


async def request_password_reset(
    session: AsyncSession,
    settings: Settings,
    limiter: RequestRateLimiter,
    ip: str,
    body: PasswordResetRequest,
) -> None:
    """Mail a reset link if the email has an account; the same (nothing) either way. Counted
    per address and per email before the lookup, so the limits answer alike too."""
    email = accounts.normalize_email(body.email)
    window = settings.password_reset_window_seconds
    await limiter.enforce(
        f"pwreset:ip:{ip}", settings.password_reset_ip_limit, window, detail=RESET_DETAIL
    )
    await limiter.enforce(
        f"pwreset:email:{hashed(email)}",
        settings.password_reset_email_limit,
        window,
        detail=RESET_DETAIL,
    )
    await accounts.request_password_reset(session, settings, email)


async def reset_password(
    session: AsyncSession,
    redis: Redis,
    settings: Settings,
    limiter: RequestRateLimiter,
    ip: str,
    body: PasswordResetConfirm,
) -> User:
    """Spend the mailed token, set the new password, and sign the account out everywhere: all
    its refresh tokens revoked, its live streams told (its access tokens lapse within
    ``EVENTLY_ACCESS_TOKEN_MINUTES``). Attempts count against the address's reset budget."""
    await limiter.enforce(
        f"pwreset:confirm:ip:{ip}",
        settings.password_reset_ip_limit,
        settings.password_reset_window_seconds,
        detail=RESET_DETAIL,
    )
    user = await accounts.reset_password(session, body.token, body.password)
    families = await tokens.live_families(session, user.id)
    await tokens.revoke_all_for_user(session, user.id)
    for family in families:
        await live.publish_logout(redis, user.id, family)
    return user


async def resend_verification(
    session: AsyncSession, settings: Settings, limiter: RequestRateLimiter, user: User
) -> bool:
    """A fresh verification link for the account's address (False: already verified), within
    the per-email budget of reset requests so the route cannot flood a mailbox."""
    await limiter.enforce(
        f"verify:user:{user.id}",
        settings.password_reset_email_limit,
        settings.password_reset_window_seconds,
        detail="Too many verification requests.",
    )
    return await accounts.send_verification(session, settings, user)


async def verify_email(session: AsyncSession, body: VerifyEmailRequest) -> uuid.UUID:
    """Use the welcome mail's verification link: the account whose address is now verified."""
    return await accounts.verify_email(session, body.token)
