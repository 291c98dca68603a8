"""Request and response bodies of /auth and /users/profile."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from evently.db.models import User


def _storable(value: str) -> str:
    """Refuse text Postgres (or UTF-8) cannot hold: NUL bytes and lone surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    return value


def _printable_name(value: str) -> str:
    value = _storable(value).strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


# validated (format, normalization, case-insensitive lookup) by evently.accounts.normalize_email
Email = Annotated[
    str,
    Field(max_length=320, json_schema_extra={"format": "email"}),
    AfterValidator(_storable),
]
Password = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_storable)]
FullName = Annotated[str, Field(max_length=200), AfterValidator(_printable_name)]
OpaqueToken = Annotated[str, Field(min_length=1, max_length=512), AfterValidator(_storable)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(_Strict):
    """A new buyer account. There is no ``role`` field: public sign-up only makes buyers."""

    email: Email
    password: Password = Field(description="at least 10 characters, not your email address")
    full_name: FullName = ""


class LoginRequest(_Strict):
    email: Email
    password: Password


class RefreshRequest(_Strict):
    refresh_token: OpaqueToken


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    full_name: str
    role: str
    created_at: datetime
    email_verified: bool = Field(
        False, description="the address was proven (a verification or password-reset link)"
    )

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            full_name=user.full_name,
            role=user.role,
            created_at=user.created_at,
            email_verified=user.email_verified_at is not None,
        )


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the access token expires")
    refresh_expires_in: int = Field(description="seconds until the refresh token expires")
    user: UserOut


SIGN_UP_DETAIL = (
    "Check your email to finish signing up. You can log in with your email and password."
)


class SignUpAccepted(BaseModel):
    """The one answer to a sign-up, for a new and a taken email alike (no tokens: log in)."""

    status: Literal["accepted"] = "accepted"
    detail: str = SIGN_UP_DETAIL


class ProfileUpdate(_Strict):
    """Fields left out stay as they are. Email and password changes need ``current_password``."""

    full_name: FullName | None = None
    email: Email | None = None
    new_password: Password | None = None
    current_password: Password | None = None


# ---- account recovery and verification (issue 32) ----------------------------------------------


class PasswordResetRequest(_Strict):
    email: Email


class PasswordResetConfirm(_Strict):
    token: OpaqueToken = Field(description="the token of the emailed link")
    password: Password = Field(description="the new password (the sign-up rules apply)")


class VerifyEmailRequest(_Strict):
    token: OpaqueToken = Field(description="the token of the welcome mail's link")


RESET_DETAIL = (
    "If an account uses this email, a link to reset its password is on its way. "
    "It works once, and only for a short while."
)


class PasswordResetAccepted(BaseModel):
    """The one answer to a reset request, whether the email has an account or not."""

    status: Literal["accepted"] = "accepted"
    detail: str = RESET_DETAIL


class PasswordResetDone(BaseModel):
    status: Literal["password_changed"] = "password_changed"
    detail: str = "Your password was changed and every session signed out. Log in again."


class VerificationSent(BaseModel):
    """A verification link was mailed to the account's address (``sent``), or none was needed
    because the address is already verified."""

    status: Literal["sent", "already_verified"]


class EmailVerified(BaseModel):
    status: Literal["verified"] = "verified"
    email_verified: Literal[True] = True


class GuestBuyer(BaseModel):
    """Guest checkout (issue 32): who buys, without an account."""

    model_config = ConfigDict(extra="forbid")
    email: Email
    name: Annotated[FullName, Field(min_length=1)]
