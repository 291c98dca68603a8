"""Refresh tokens: opaque, stored as SHA-256 hashes, rotated on every use, grouped in families.

A login starts a *family* (the session: its id is the access token's ``sid``). Each refresh
marks the presented token rotated and issues its successor in the same family, in one
conditional UPDATE, so one token is spent once. Presenting a token that was already rotated
means someone holds a copy (theft, or a replayed request): the whole family is revoked, the
newest token included, and the holder must log in again. Logout revokes the family of the
presented token.

**Grace window** (``EVENTLY_REFRESH_REUSE_GRACE_SECONDS``): two tabs of one browser, or a retry
after a lost answer, present the same token at once. The successor's value is not random but
``HMAC(jwt_secret, presented token)``, so the server can re-derive it from the presented token
alone (nothing but hashes is stored; a database copy does not yield a token). A rotated token
presented again within the window, while its successor is still live and unspent, gets that
same successor (and the same access token: iat = the rotation's time, jti from the successor)
— not a theft alarm. Outside the window, or once the successor was itself spent or revoked,
the reuse revokes the family as before.

Functions here only execute on the caller's session; the caller owns the transaction. Two
exceptions, both on the way to a 401: :func:`rotate` rolls the session back when it refuses a
token, and :func:`revoke_family_now` commits on its own so the revocation survives the 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from evently.db.models import User
from evently.errors import (
    InvalidToken,
    TokenExpired,
    TokenReused,
    TokenRevoked,
    Unauthorized,
)
from evently.security import hash_refresh_token
from evently.settings import Settings

log = logging.getLogger("evently.tokens")

MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True)
class IssuedRefreshToken:
    token: str
    family_id: uuid.UUID
    expires_in: int  # seconds


@dataclass(frozen=True)
class Rotation:
    user: User
    refresh: IssuedRefreshToken
    rotated_at: datetime  # when the presented token was spent: the new access token's iat


class RefreshTokenReused(TokenReused):
    """An already-rotated token came back: its family must be revoked (and stay revoked)."""

    def __init__(self, family_id: uuid.UUID, user_id: uuid.UUID) -> None:
        super().__init__(
            "This refresh token was already used; every token of its session has been revoked. "
            "Log in again."
        )
        self.family_id = family_id
        self.user_id = user_id


def _invalid() -> Unauthorized:
    return InvalidToken("The refresh token is invalid.")


def successor_of(settings: Settings, token: str) -> str:
    """The refresh token that replaces ``token``: a keyed MAC of it, so a retry within the
    grace window can be answered with the same value without storing it."""
    mac = hmac.new(
        settings.jwt_secret.encode(), b"evently-refresh-successor:" + token.encode(), "sha256"
    )
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def access_jti(refresh_token: str) -> str:
    """The jti of the access token issued with ``refresh_token`` (reproducible, not secret)."""
    return hashlib.sha256(b"evently-access-jti:" + refresh_token.encode()).hexdigest()[:32]


async def issue(
    session: AsyncSession,
    settings: Settings,
    user_id: uuid.UUID,
    family_id: uuid.UUID | None = None,
    *,
    token: str | None = None,
) -> IssuedRefreshToken:
    """Insert a new refresh token (a new family unless ``family_id`` is given; a random value
    unless ``token`` is given)."""
    token = token or secrets.token_urlsafe(48)
    token_hash = hash_refresh_token(token)
    family = family_id or uuid.uuid4()
    await session.execute(
        text(
            "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at) "
            "VALUES (:id, :user_id, :family_id, :token_hash, now() + make_interval(days => :days))"
        ),
        {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "family_id": family,
            "token_hash": token_hash,
            "days": settings.refresh_token_days,
        },
    )
    return IssuedRefreshToken(token, family, settings.refresh_token_days * 86400)


async def rotate(session: AsyncSession, settings: Settings, token: str) -> Rotation:
    """Spend ``token`` and issue its successor. 401 when unknown, expired, revoked or reused.

    A token rotated less than the grace window ago whose successor is still live is answered
    with that successor (see the module docstring). Raises :class:`RefreshTokenReused` for
    any other already-rotated token: the caller must then call :func:`revoke_family_now` (its
    own transaction, since the 401 rolls the request back).
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise _invalid()
    token_hash = hash_refresh_token(token)
    row = (
        await session.execute(
            text(
                "UPDATE refresh_tokens SET rotated_at = now() "
                "WHERE token_hash = :h AND rotated_at IS NULL AND revoked_at IS NULL "
                "AND expires_at > now() RETURNING user_id, family_id, rotated_at"
            ),
            {"h": token_hash},
        )
    ).one_or_none()
    if row is None:
        # End the transaction before anything else: when this UPDATE waited on a concurrent
        # rotation, PostgreSQL locked the row to re-check the WHERE (EvalPlanQual) and keeps it
        # locked even though it matched nothing — the family revocation, in its own
        # transaction, would then wait on us forever. The request answers 401 anyway.
        await session.rollback()
        return await _retry_or_refuse(session, settings, token)
    user_id, family_id, rotated_at = row
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise _invalid()
    successor = await issue(
        session, settings, user.id, family_id, token=successor_of(settings, token)
    )
    return Rotation(user, successor, rotated_at)


async def _retry_or_refuse(session: AsyncSession, settings: Settings, token: str) -> Rotation:
    """A token the UPDATE did not spend: the same successor again (a retry within the grace
    window), or the reason it is refused."""
    found = (
        await session.execute(
            text(
                "SELECT user_id, family_id, rotated_at, revoked_at, expires_at <= now(), "
                "rotated_at > now() - make_interval(secs => :grace) "
                "FROM refresh_tokens WHERE token_hash = :h"
            ),
            {"h": hash_refresh_token(token), "grace": settings.refresh_reuse_grace_seconds},
        )
    ).one_or_none()
    if found is None:
        raise _invalid()
    user_id, family_id, rotated_at, revoked_at, _, in_grace = found
    if rotated_at is not None and revoked_at is None and in_grace:
        retried = await _same_successor(session, settings, token, family_id, user_id, rotated_at)
        if retried is not None:
            return retried
    _refuse(tuple(found))


async def _same_successor(
    session: AsyncSession,
    settings: Settings,
    token: str,
    family_id: uuid.UUID,
    user_id: uuid.UUID,
    rotated_at: datetime,
) -> Rotation | None:
    """The successor issued when ``token`` was spent, while it is live and unspent."""
    successor = successor_of(settings, token)
    live = await session.scalar(
        text(
            "SELECT 1 FROM refresh_tokens WHERE token_hash = :h AND family_id = :f "
            "AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > now()"
        ),
        {"h": hash_refresh_token(successor), "f": family_id},
    )
    user = await session.get(User, user_id) if live else None
    if user is None or not user.is_active:
        return None
    log.info("refresh token presented again within the grace window (family %s)", family_id)
    issued = IssuedRefreshToken(successor, family_id, settings.refresh_token_days * 86400)
    return Rotation(user, issued, rotated_at)


def _refuse(found: tuple[Any, ...]) -> NoReturn:
    user_id, family_id, rotated_at, revoked_at, expired, _ = found
    if rotated_at is not None:
        raise RefreshTokenReused(family_id, user_id)
    if revoked_at is not None:
        raise TokenRevoked("The refresh token has been revoked.")
    if expired:
        raise TokenExpired("The refresh token has expired.")
    raise _invalid()


async def family_of(session: AsyncSession, token: str) -> uuid.UUID | None:
    """The session (family) of a refresh token, spent or not; None for an unknown token."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    family: uuid.UUID | None = await session.scalar(
        text("SELECT family_id FROM refresh_tokens WHERE token_hash = :h"),
        {"h": hash_refresh_token(token)},
    )
    return family


async def revoke_family_now(
    sessionmaker: async_sessionmaker[AsyncSession], exc: RefreshTokenReused
) -> int:
    """Revoke a reused token's whole family in a transaction of its own. Returns rows revoked."""
    async with sessionmaker() as session, session.begin():
        revoked = await _revoke(session, "family_id = :f", {"f": exc.family_id})
    log.warning(
        "refresh token reuse detected: revoked family %s of user %s (%d live tokens)",
        exc.family_id,
        exc.user_id,
        revoked,
    )
    return revoked


async def revoke_family_of(session: AsyncSession, token: str) -> int:
    """Logout: revoke the family of ``token`` (no-op for an unknown token). Rows revoked."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return 0
    return await _revoke(
        session,
        "family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = :h)",
        {"h": hash_refresh_token(token)},
    )


async def revoke_all_for_user(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Sign a user out everywhere (e.g. after a password change)."""
    return await _revoke(session, "user_id = :u", {"u": user_id})


async def live_families(session: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    """The user's sessions that still have a usable token (before signing them all out)."""
    rows = await session.scalars(
        text(
            "SELECT DISTINCT family_id FROM refresh_tokens WHERE user_id = :u "
            "AND revoked_at IS NULL AND expires_at > now()"
        ),
        {"u": user_id},
    )
    return list(rows)


async def _revoke(session: AsyncSession, where: str, params: dict[str, object]) -> int:
    result = await session.execute(
        text(f"UPDATE refresh_tokens SET revoked_at = now() WHERE {where} AND revoked_at IS NULL"),
        params,
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def prune_expired(session: AsyncSession, *, grace_days: int = 1) -> int:
    """Delete tokens expired more than ``grace_days`` ago (spent and revoked ones included).

    Until they expire, spent tokens are kept: they are what reuse detection recognises.
    """
    result = await session.execute(
        text("DELETE FROM refresh_tokens WHERE expires_at < now() - make_interval(days => :d)"),
        {"d": grace_days},
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# live streams (issue 28): a user's stream ends when its session logs out (api/live/)
async def owner_of(session: AsyncSession, token: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(user id, family id) of a refresh token, or None for an unknown one."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = (
        await session.execute(
            text("SELECT user_id, family_id FROM refresh_tokens WHERE token_hash = :h"),
            {"h": hash_refresh_token(token)},
        )
    ).first()
    return (row[0], row[1]) if row else None


async def family_active(session: AsyncSession, family_id: uuid.UUID) -> bool:
    """True while the session has a token that is neither revoked nor expired."""
    found = await session.scalar(
        text(
            "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = :f "
            "AND revoked_at IS NULL AND expires_at > now())"
        ),
        {"f": family_id},
    )
    return bool(found)
