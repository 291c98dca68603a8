"""GET and PUT /users/profile: the caller's own account."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth.deps import CurrentUser, RateLimiterDep
from api.auth.schemas import ProfileUpdate, UserOut
from api.deps import SessionDep, SettingsDep
from api.problems import problem_responses
from evently import accounts, tokens
from evently.errors import (
    CurrentPasswordRequired,
    EmailTaken,
    InvalidEmail,
    TooManyRequests,
    WeakPassword,
    WrongPassword,
)

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/profile", response_model=UserOut)
async def get_profile(user: CurrentUser) -> UserOut:
    return UserOut.of(user)


@router.put(
    "/profile",
    response_model=UserOut,
    responses=problem_responses(
        WrongPassword,
        EmailTaken,
        InvalidEmail,
        WeakPassword,
        CurrentPasswordRequired,
        TooManyRequests,
    ),
)
async def update_profile(
    body: ProfileUpdate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> UserOut:
    """Change ``full_name``; ``email`` and ``new_password`` also need ``current_password``.

    Fields left out stay unchanged. A password change signs the account out everywhere: every
    refresh token is revoked (access tokens already issued live until they expire).
    """
    if body.current_password is not None:
        # guessing the current password through this endpoint is throttled like login
        await limiter.enforce(
            f"profile-password:user:{user.id}",
            settings.login_rate_limit,
            settings.rate_limit_window_seconds,
            detail="Too many password attempts.",
        )
    old_email = user.email
    password_changed = await accounts.update_profile(
        session,
        user,
        full_name=body.full_name,
        email=body.email,
        new_password=body.new_password,
        current_password=body.current_password,
    )
    if password_changed:
        await tokens.revoke_all_for_user(session, user.id)
    if user.email != old_email:  # the new address is unproven: mail it its link (issue 32)
        await accounts.send_verification(session, settings, user)
    return UserOut.of(user)
