"""Accounts: creation (the CLI, the bootstrap admin, sign-up through the API and the
storefront), log-in, the account behind an access token, profile changes."""

from __future__ import annotations

import json
import time
import uuid

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from evently import account_tokens
from evently.db.models import USER_ROLES, User
from evently.enums import NotificationKind
from evently.errors import (
    Conflict,
    CurrentPasswordRequired,
    EmailTaken,
    InvalidCredentials,
    InvalidEmail,
    ResetTokenInvalid,
    Unauthorized,
    Unprocessable,
    VerificationTokenInvalid,
    WeakPassword,
    WrongPassword,
)
from evently.security import hash_password_async, needs_rehash, verify_password_async
from evently.settings import Settings

MIN_PASSWORD_LENGTH = 10
#: the password hash of a guest checkout's account row (evently/booking_keys.py): not an
#: argon2 hash, so no password verifies against it; sign-up or a password reset replaces it
GUEST_PASSWORD_HASH = "!guest"


def normalize_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidEmail(f"email: {exc}") from exc


def check_password_policy(password: str, email: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(
            f"password: must be at least {MIN_PASSWORD_LENGTH} characters long.",
        )
    if password.strip().lower() in {email.lower(), email.split("@")[0].lower()}:
        raise WeakPassword("password: must not be your email address.")


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(func.lower(User.email) == email.lower()))


async def active_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """The account an access token names, while it exists and is active (else None)."""
    user = await session.scalar(select(User).where(User.id == user_id))
    return user if user is not None and user.is_active else None


async def create_user(
    session: AsyncSession, email: str, password: str, *, role: str = "buyer", full_name: str = ""
) -> User:
    """Validate and insert a user (flush only: the caller owns the transaction)."""
    if role not in USER_ROLES:
        raise Unprocessable(f"role: must be one of {', '.join(USER_ROLES)}")
    email = normalize_email(email)
    check_password_policy(password, email)
    if await get_user_by_email(session, email) is not None:
        raise _email_taken()
    password_hash = await hash_password_async(password)
    user = User(email=email, password_hash=password_hash, role=role, full_name=full_name)
    session.add(user)
    await _flush_unique_email(session)
    await session.refresh(user, ["created_at"])  # server default: load it while we can await
    return user


async def sign_up(
    session: AsyncSession,
    settings: Settings,
    email: str,
    password: str,
    *,
    full_name: str = "",
) -> tuple[uuid.UUID, bool]:
    """Public sign-up: (the account's id, True) for a new **buyer** account, (the existing
    account's id, False) when the email is taken, in which case nothing changes. The caller's
    answer must not tell the two apart, so both cost the same (the password is hashed for a
    taken email too) and both end in a mail to the address through the outbox: a welcome, or
    "you already have an account" (at most one an hour, so sign-ups cannot flood an inbox).
    The welcome carries the address's verification link (:mod:`evently.account_tokens`);
    "you already have an account" points at the password reset.
    Flush only: the caller owns the transaction."""
    email = normalize_email(email)
    check_password_policy(password, email)
    password_hash = await hash_password_async(password)
    existing = await get_user_by_email(session, email)
    if existing is None:
        try:
            async with session.begin_nested():  # a concurrent sign-up of the same email
                user = User(
                    email=email, password_hash=password_hash, role="buyer", full_name=full_name
                )
                session.add(user)
                await session.flush()
        except IntegrityError as exc:
            if "uq_users_email_lower" not in str(exc.orig):
                raise
            existing = await get_user_by_email(session, email)
            if existing is None:
                raise
        else:
            await _welcome(session, settings, user.id, email)
            return user.id, True
    if existing.password_hash == GUEST_PASSWORD_HASH:  # a guest checkout's row: now an account
        claimed = await session.execute(
            text(
                "UPDATE users SET password_hash = :h, full_name = "
                "CASE WHEN :n = '' THEN full_name ELSE :n END, updated_at = now() "
                "WHERE id = :id AND password_hash = :guest"
            ),
            {"h": password_hash, "n": full_name, "id": existing.id, "guest": GUEST_PASSWORD_HASH},
        )
        if claimed.rowcount:  # type: ignore[attr-defined]
            await _welcome(session, settings, existing.id, email)
            return existing.id, True
    hour = int(time.time() // 3600)
    await _notify(session, existing.id, NotificationKind.ACCOUNT_EXISTS, f"{existing.id}:{hour}")
    return existing.id, False


async def _welcome(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, email: str
) -> None:
    """The welcome notice, with the address's verification link (issue 32)."""
    token_id = await account_tokens.issue(
        session, settings, user_id, email, account_tokens.EMAIL_VERIFICATION
    )
    await _notify(
        session,
        user_id,
        NotificationKind.ACCOUNT_WELCOME,
        f"{user_id}",
        payload={"token_id": str(token_id)},
    )


async def send_verification(session: AsyncSession, settings: Settings, user: User) -> bool:
    """Mail a fresh verification link to the account's current address, unless it is already
    verified (False: nothing sent). Used when the buyer asks again and when the address
    changes (the new address must be proven before guest bookings made with it are claimed).
    Flush only: the caller owns the transaction."""
    if user.email_verified_at is not None:
        return False
    token_id = await account_tokens.issue(
        session, settings, user.id, user.email, account_tokens.EMAIL_VERIFICATION
    )
    await _notify(
        session,
        user.id,
        NotificationKind.EMAIL_VERIFICATION,
        f"{user.id}:{token_id}",
        payload={"token_id": str(token_id)},
    )
    return True


async def _notify(
    session: AsyncSession,
    user_id: uuid.UUID,
    kind: NotificationKind,
    key: str,
    *,
    payload: dict[str, str] | None = None,
) -> None:
    """A notice (and so a mail: evently/mail/outbox.py) about the account itself."""
    await session.execute(
        text(
            "INSERT INTO notifications (id, user_id, kind, dedupe_key, payload) "
            "VALUES (:id, :user_id, :kind, :key, CAST(:payload AS jsonb)) "
            "ON CONFLICT (dedupe_key) DO NOTHING"
        ),
        {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "kind": str(kind),
            "key": f"{kind}:{key}",
            "payload": json.dumps(payload or {}),
        },
    )


# ---- account recovery (issue 32) ---------------------------------------------------------------


async def request_password_reset(session: AsyncSession, settings: Settings, email: str) -> None:
    """Mail a reset link to the account with this (normalized) email, if there is an active
    one; nothing at all otherwise. The caller answers the same either way."""
    user = await get_user_by_email(session, email)
    if user is None or not user.is_active:
        return
    token_id = await account_tokens.issue(
        session, settings, user.id, user.email, account_tokens.PASSWORD_RESET
    )
    await _notify(
        session,
        user.id,
        NotificationKind.PASSWORD_RESET,
        f"{token_id}",
        payload={"token_id": str(token_id)},
    )


async def reset_password(session: AsyncSession, token: str, password: str) -> User:
    """Spend a reset token and set the account's new password (the password policy applies:
    a refusal rolls the caller's transaction back and the link still works). Every other
    reset link of the account is spent, and its address counts as verified (the link reached
    it). Revoking the account's sessions is the caller's (:mod:`evently.tokens`)."""
    user_id = await account_tokens.spend_reset(session, token)
    user = await session.get(User, user_id) if user_id is not None else None
    if user is None:
        raise ResetTokenInvalid()
    check_password_policy(password, user.email)
    user.password_hash = await hash_password_async(password)
    await session.flush()
    await account_tokens.spend_all_resets(session, user.id)
    await account_tokens.mark_verified(session, user.id)
    await session.refresh(user, ["email_verified_at", "updated_at"])
    return user


async def verify_email(session: AsyncSession, token: str) -> uuid.UUID:
    """Use an email-verification token: the account whose address is now verified."""
    user_id = await account_tokens.verify_email(session, token)
    if user_id is None:
        raise VerificationTokenInvalid()
    return user_id


def _email_taken() -> Conflict:
    return EmailTaken("An account with this email already exists.")


async def _flush_unique_email(session: AsyncSession) -> None:
    """Flush; a concurrent insert of the same email (unique lower(email) index) is a 409."""
    try:
        await session.flush()
    except IntegrityError as exc:
        if "uq_users_email_lower" in str(exc.orig):
            raise _email_taken() from exc
        raise


def invalid_credentials() -> Unauthorized:
    # one message and code for "no such email", "wrong password" and "disabled account"
    return InvalidCredentials("Email or password is incorrect.")


async def authenticate(session: AsyncSession, email: str, password: str) -> User:
    """The active user with these credentials, else 401 — same answer and cost either way.

    An unknown email is verified against a dummy hash, so it takes as long as a wrong password.
    """
    user = await get_user_by_email(session, email)
    ok = await verify_password_async(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        raise invalid_credentials()
    if needs_rehash(user.password_hash):  # parameters raised since this hash was made
        user.password_hash = await hash_password_async(password)
        await session.flush()
    return user


async def update_profile(
    session: AsyncSession,
    user: User,
    *,
    full_name: str | None = None,
    email: str | None = None,
    new_password: str | None = None,
    current_password: str | None = None,
) -> bool:
    """Apply a profile change (flush only). Returns True when the password changed.

    Changing the email or the password needs ``current_password`` (a stolen access token alone
    cannot take the account over).
    """
    new_email = normalize_email(email) if email is not None else None
    if new_email == user.email:
        new_email = None
    if new_email is not None or new_password is not None:
        if not current_password:
            raise CurrentPasswordRequired(
                "current_password: required to change the email or the password.",
            )
        if not await verify_password_async(user.password_hash, current_password):
            raise WrongPassword("current_password is incorrect.")
    if new_password is not None:
        check_password_policy(new_password, new_email or user.email)
    if new_email is not None:
        if new_email.lower() != user.email.lower():
            existing = await get_user_by_email(session, new_email)
            if existing is not None and existing.id != user.id:
                raise _email_taken()
        user.email = new_email
        user.email_verified_at = None  # the new address is not proven (issue 32)
    if new_password is not None:
        user.password_hash = await hash_password_async(new_password)
    if full_name is not None:
        user.full_name = full_name
    await _flush_unique_email(session)
    return new_password is not None


async def ensure_user(
    session: AsyncSession, email: str, password: str, *, role: str
) -> tuple[User, bool]:
    """Create the account if missing (idempotent bootstrap). Returns (user, created)."""
    existing = await get_user_by_email(session, normalize_email(email))
    if existing is not None:
        return existing, False
    return await create_user(session, email, password, role=role), True


async def ensure_bootstrap_admin(session: AsyncSession, email: str, password: str) -> str:
    """The configured bootstrap admin exists: "created", "exists", or "not-admin".

    An existing account with that email is never promoted (it may have been registered through
    the public endpoint by anyone); "not-admin" tells the operator to pick another address.
    """
    user, created = await ensure_user(session, email, password, role="admin")
    if created:
        return "created"
    return "exists" if user.role == "admin" else "not-admin"


# ---- issue 29: the buyer of an organizer's order ------------------------------------------------

#: the password hash of an account made for an organizer's order: not an argon2 hash, so no
#: password verifies against it (log-in answers 401 as for a wrong password) until one is set
NO_PASSWORD = "!no-password"


async def ensure_buyer(session: AsyncSession, email: str, full_name: str) -> tuple[User, bool]:
    """The account of ``email`` (case-insensitive), created when there is none: a buyer with
    no usable password (:data:`NO_PASSWORD`). Returns (account, created). Concurrent orders for
    the same new email make one account (the unique ``lower(email)`` index decides)."""
    email = normalize_email(email)
    created = await session.scalar(
        text(
            "INSERT INTO users (id, email, password_hash, full_name, role) "
            "VALUES (gen_random_uuid(), :email, :pw, :name, 'buyer') "
            "ON CONFLICT ((lower(email))) DO NOTHING RETURNING id"
        ),
        {"email": email, "pw": NO_PASSWORD, "name": full_name[:200]},
    )
    user = await get_user_by_email(session, email)
    assert user is not None
    return user, created is not None
