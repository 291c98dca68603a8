"""Password-reset and email-verification tokens: mailed to an account's address, single use.

Only a SHA-256 of a token is stored (``account_tokens.token_hash``). The token itself is a
keyed MAC of its row id (``HMAC(jwt_secret, purpose:id)``), so the mail outbox, which writes
the mail later and in another process, can recompute the link from the row alone — and a copy
of the database without the key yields no token (as refresh-token successors:
:mod:`evently.tokens`). A token is bound to the address it was mailed to: once the account's
email changes, it is worth nothing.

- **Password reset** (``password_reset``): lives ``EVENTLY_PASSWORD_RESET_MINUTES`` (30);
  spent once by a conditional UPDATE (two concurrent uses: one wins); a successful reset
  spends every other reset token of the account, revokes all its refresh tokens and — the
  link reached the mailbox — marks the address verified.
- **Email verification** (``email_verification``): mailed with the welcome at sign-up; lives
  ``EVENTLY_EMAIL_VERIFICATION_HOURS``; using it again while it lives is harmless (the same
  answer), so a double click or a mail scanner's visit does no harm.

Functions here only execute on the caller's session (flush only); the caller commits.
"""

from __future__ import annotations

import base64
import hmac
import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from evently.security import hash_refresh_token
from evently.settings import Settings

Purpose = Literal["password_reset", "email_verification"]
PASSWORD_RESET: Purpose = "password_reset"
EMAIL_VERIFICATION: Purpose = "email_verification"
MAX_TOKEN_LENGTH = 512


def token_for(settings: Settings, purpose: Purpose, token_id: uuid.UUID) -> str:
    """The token of row ``token_id``: recomputable with the key, never stored."""
    mac = hmac.new(
        settings.jwt_secret.encode(),
        f"evently-account-token:{purpose}:{token_id}".encode(),
        "sha256",
    )
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def _hash(token: str) -> str:
    return hash_refresh_token(token)  # SHA-256 hex, as refresh tokens


async def issue(
    session: AsyncSession,
    settings: Settings,
    user_id: uuid.UUID,
    email: str,
    purpose: Purpose,
) -> uuid.UUID:
    """A new token row for ``email`` (the account's address now); returns its id (the mail
    recomputes the token from it with :func:`token_for`)."""
    token_id = uuid.uuid4()
    seconds = (
        settings.password_reset_minutes * 60
        if purpose == PASSWORD_RESET
        else settings.email_verification_hours * 3600
    )
    await session.execute(
        text(
            "INSERT INTO account_tokens (id, user_id, purpose, email, token_hash, expires_at) "
            "VALUES (:id, :u, :p, :e, :h, now() + make_interval(secs => :s))"
        ),
        {
            "id": token_id,
            "u": user_id,
            "p": purpose,
            "e": email,
            "h": _hash(token_for(settings, purpose, token_id)),
            "s": seconds,
        },
    )
    return token_id


@dataclass(frozen=True)
class MailableToken:
    token: str


async def mailable(
    conn: AsyncConnection, settings: Settings, token_id: uuid.UUID, purpose: Purpose
) -> MailableToken | None:
    """The token of row ``token_id`` while it is still worth mailing: unused, unexpired and
    for the account's current address (else None)."""
    live = await conn.scalar(
        text(
            "SELECT 1 FROM account_tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.id = :id AND t.purpose = :p AND t.used_at IS NULL "
            "AND t.expires_at > now() AND lower(u.email) = lower(t.email)"
        ),
        {"id": token_id, "p": purpose},
    )
    return MailableToken(token_for(settings, purpose, token_id)) if live else None


async def spend_reset(session: AsyncSession, token: str) -> uuid.UUID | None:
    """Spend a password-reset token: the account's id, or None when the token is unknown,
    used, expired, or for an address the account no longer has. Exactly one of concurrent
    spends of one token gets the id (a conditional UPDATE)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    user_id: uuid.UUID | None = await session.scalar(
        text(
            "UPDATE account_tokens t SET used_at = now() FROM users u "
            "WHERE t.token_hash = :h AND t.purpose = 'password_reset' AND t.used_at IS NULL "
            "AND t.expires_at > now() AND u.id = t.user_id AND u.is_active "
            "AND lower(u.email) = lower(t.email) RETURNING t.user_id"
        ),
        {"h": _hash(token)},
    )
    return user_id


async def spend_all_resets(session: AsyncSession, user_id: uuid.UUID) -> None:
    """After a reset: every other reset link of the account stops working."""
    await session.execute(
        text(
            "UPDATE account_tokens SET used_at = now() "
            "WHERE user_id = :u AND purpose = 'password_reset' AND used_at IS NULL"
        ),
        {"u": user_id},
    )


async def mark_verified(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(
        text(
            "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = :u"
        ),
        {"u": user_id},
    )


async def verify_email(session: AsyncSession, token: str) -> uuid.UUID | None:
    """Use a verification token: the account's id (its address is now verified), or None
    when the token is unknown, expired or for an address the account no longer has. Using it
    again while it lives gives the same answer."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    user_id: uuid.UUID | None = await session.scalar(
        text(
            "UPDATE account_tokens t SET used_at = coalesce(t.used_at, now()) FROM users u "
            "WHERE t.token_hash = :h AND t.purpose = 'email_verification' "
            "AND t.expires_at > now() AND u.id = t.user_id AND u.is_active "
            "AND lower(u.email) = lower(t.email) RETURNING t.user_id"
        ),
        {"h": _hash(token)},
    )
    if user_id is not None:
        await mark_verified(session, user_id)
    return user_id


async def prune_expired(session: AsyncSession, *, grace_days: int = 1) -> int:
    """Delete tokens expired more than ``grace_days`` ago."""
    result = await session.execute(
        text("DELETE FROM account_tokens WHERE expires_at < now() - make_interval(days => :d)"),
        {"d": grace_days},
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
