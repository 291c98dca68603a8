"""Account creation shared by the CLI, the bootstrap admin and the register endpoint."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from evently.db.models import USER_ROLES, User
from evently.errors import Conflict, Unprocessable
from evently.security import hash_password

MIN_PASSWORD_LENGTH = 10


def normalize_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise Unprocessable(f"email: {exc}", code="invalid_email") from exc


def check_password_policy(password: str, email: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Unprocessable(
            f"password: must be at least {MIN_PASSWORD_LENGTH} characters long.",
            code="weak_password",
        )
    if password.strip().lower() in {email.lower(), email.split("@")[0].lower()}:
        raise Unprocessable("password: must not be your email address.", code="weak_password")


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(func.lower(User.email) == email.lower()))


async def create_user(
    session: AsyncSession, email: str, password: str, *, role: str = "buyer", full_name: str = ""
) -> User:
    """Validate and insert a user (flush only: the caller owns the transaction)."""
    if role not in USER_ROLES:
        raise Unprocessable(f"role: must be one of {', '.join(USER_ROLES)}")
    email = normalize_email(email)
    check_password_policy(password, email)
    if await get_user_by_email(session, email) is not None:
        raise Conflict("An account with this email already exists.", code="email_taken")
    user = User(email=email, password_hash=hash_password(password), role=role, full_name=full_name)
    session.add(user)
    await session.flush()
    return user


async def ensure_user(
    session: AsyncSession, email: str, password: str, *, role: str
) -> tuple[User, bool]:
    """Create the account if missing (idempotent bootstrap). Returns (user, created)."""
    existing = await get_user_by_email(session, normalize_email(email))
    if existing is not None:
        return existing, False
    return await create_user(session, email, password, role=role), True
