"""Guest checkout (issue 32): the buyer's account row for an email, and booking access keys.

A guest's booking belongs to the account row of the buyer's email: the existing account, or a
new *guest* row (password hash :data:`GUEST_PASSWORD_HASH`, which no password verifies) — so
every rule keyed by the buyer (per-account reserve limits, notices and their mail) applies to
guests unchanged. A guest row becomes a full account by signing up with that email (the same
202 as any sign-up) or by a password reset.

An access key opens one booking without an account, wherever the buyer's token would
(``Evently-Booking-Key`` header or ``?key=``). Only a SHA-256 of the key is stored; the key is
``HMAC(jwt_secret, "evently-booking-key:<row id>")``, so the confirmation mail, written later
by the outbox, can carry it. Keys are revocable (:func:`rotate`: the old ones stop working, a
new one is made). A booking that has a key row is a *guest booking*: the account of its email
sees it (``GET /users/bookings``, its token on the booking's routes) only once the account's
email is verified (:func:`visible_to_account`).

Functions here execute on the caller's session or connection (flush only).
"""

from __future__ import annotations

import base64
import hmac
import uuid

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from evently.accounts import GUEST_PASSWORD_HASH, get_user_by_email
from evently.db.models import User
from evently.security import hash_refresh_token
from evently.settings import Settings

MAX_KEY_LENGTH = 512


def is_guest(user: User) -> bool:
    return user.password_hash == GUEST_PASSWORD_HASH


async def buyer_for_email(session: AsyncSession, email: str, full_name: str) -> User:
    """The account row a guest's booking belongs to: the email's account, or a new guest row
    (``email`` normalized by the caller). Concurrent guests with one email get one row."""
    existing = await get_user_by_email(session, email)
    if existing is not None:
        return existing
    try:
        async with session.begin_nested():
            user = User(
                email=email, password_hash=GUEST_PASSWORD_HASH, role="buyer", full_name=full_name
            )
            session.add(user)
            await session.flush()
    except IntegrityError as exc:
        if "uq_users_email_lower" not in str(exc.orig):
            raise
        found = await get_user_by_email(session, email)
        if found is None:
            raise
        return found
    return user


def key_for(settings: Settings, key_id: uuid.UUID) -> str:
    mac = hmac.new(settings.jwt_secret.encode(), f"evently-booking-key:{key_id}".encode(), "sha256")
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def access_url(settings: Settings, booking_id: uuid.UUID, key: str) -> str:
    """The storefront's page of the booking, opened with its key (no account)."""
    base = (settings.public_url or f"http://{settings.api_host}:{settings.api_port}").rstrip("/")
    return f"{base}/checkout/{booking_id}?key={key}"


async def _live_key_id(
    conn: AsyncSession | AsyncConnection, booking_id: uuid.UUID
) -> uuid.UUID | None:
    found: uuid.UUID | None = await conn.scalar(
        text(
            "SELECT id FROM booking_access_keys WHERE booking_id = :b AND revoked_at IS NULL "
            "ORDER BY created_at DESC LIMIT 1"
        ),
        {"b": booking_id},
    )
    return found


async def ensure(
    session: AsyncSession, settings: Settings, booking_id: uuid.UUID, user_id: uuid.UUID
) -> str:
    """The booking's live access key, made if it has none (a retried reserve gets the same)."""
    key_id = await _live_key_id(session, booking_id)
    if key_id is None:
        key_id = uuid.uuid4()
        await session.execute(
            text(
                "INSERT INTO booking_access_keys (id, booking_id, user_id, key_hash) "
                "VALUES (:id, :b, :u, :h)"
            ),
            {
                "id": key_id,
                "b": booking_id,
                "u": user_id,
                "h": hash_refresh_token(key_for(settings, key_id)),
            },
        )
    return key_for(settings, key_id)


async def rotate(
    session: AsyncSession, settings: Settings, booking_id: uuid.UUID, user_id: uuid.UUID
) -> str:
    """Revoke every key of the booking and make a new one."""
    await session.execute(
        text(
            "UPDATE booking_access_keys SET revoked_at = now() "
            "WHERE booking_id = :b AND revoked_at IS NULL"
        ),
        {"b": booking_id},
    )
    return await ensure(session, settings, booking_id, user_id)


async def mailable_key(
    conn: AsyncConnection, settings: Settings, booking_id: uuid.UUID
) -> str | None:
    """The key a mail about the booking carries (None: not a guest booking, or revoked)."""
    key_id = await _live_key_id(conn, booking_id)
    return key_for(settings, key_id) if key_id is not None else None


async def owner(session: AsyncSession, booking_id: uuid.UUID, key: str) -> uuid.UUID | None:
    """The account a live key of *this* booking stands for (None: wrong, revoked, another
    booking's key)."""
    if not key or len(key) > MAX_KEY_LENGTH:
        return None
    found: uuid.UUID | None = await session.scalar(
        text(
            "SELECT user_id FROM booking_access_keys "
            "WHERE key_hash = :h AND booking_id = :b AND revoked_at IS NULL"
        ),
        {"h": hash_refresh_token(key), "b": booking_id},
    )
    return found


async def is_guest_booking(session: AsyncSession, booking_id: uuid.UUID) -> bool:
    found = await session.scalar(
        text("SELECT EXISTS (SELECT 1 FROM booking_access_keys WHERE booking_id = :b)"),
        {"b": booking_id},
    )
    return bool(found)


async def visible_to_account(session: AsyncSession, user: User, booking_id: uuid.UUID) -> bool:
    """Whether the owning account's token opens this booking: always for its own bookings,
    for guest bookings only once the account's email is verified."""
    if user.email_verified_at is not None:
        return True
    return not await is_guest_booking(session, booking_id)
