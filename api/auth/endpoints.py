"""POST /auth/register, /auth/login, /auth/refresh, /auth/logout, /auth/password-reset,
/auth/password-reset/confirm, /auth/verify-email, /auth/verify-email/resend: JSON over
:mod:`api.auth.service` (the storefront's forms use the same service). Sign-up answers 202
with no tokens (it reveals nothing about the email); the client logs in next. A reset request
answers 202 for every email alike."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from api.auth import service
from api.auth.deps import CurrentUser, RateLimiterDep, client_ip
from api.auth.schemas import (
    EmailVerified,
    LoginRequest,
    PasswordResetAccepted,
    PasswordResetConfirm,
    PasswordResetDone,
    PasswordResetRequest,
    RefreshRequest,
    RegisterRequest,
    SignUpAccepted,
    TokenResponse,
    UserOut,
    VerificationSent,
    VerifyEmailRequest,
)
from api.deps import ResourcesDep, SessionDep, SettingsDep
from api.problems import problem_responses
from evently.errors import (
    InvalidCredentials,
    InvalidEmail,
    InvalidToken,
    ResetTokenInvalid,
    TokenExpired,
    TokenReused,
    TokenRevoked,
    TooManyRequests,
    VerificationTokenInvalid,
    WeakPassword,
)
from evently.settings import Settings

router = APIRouter(prefix="/auth", tags=["auth"])


def _token_pair(settings: Settings, signed_in: service.SignedIn) -> TokenResponse:
    return TokenResponse(
        access_token=signed_in.access_token,
        refresh_token=signed_in.refresh.token,
        expires_in=settings.access_token_minutes * 60,
        refresh_expires_in=signed_in.refresh.expires_in,
        user=UserOut.of(signed_in.user),
    )


@router.post(
    "/register",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SignUpAccepted,
    responses=problem_responses(InvalidEmail, WeakPassword, TooManyRequests),
)
async def register(
    body: RegisterRequest,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> SignUpAccepted:
    """Sign up for a **buyer** account, then log in with ``POST /auth/login``. The answer is
    the same whether the email was new or already had an account (only the mail sent to the
    address differs), so it cannot be used to find out who has an account. Admin and support
    accounts come from the CLI."""
    await service.register(session, settings, limiter, client_ip(request), body)
    return SignUpAccepted()


@router.post(
    "/login",
    response_model=TokenResponse,
    responses=problem_responses(InvalidCredentials, InvalidEmail, TooManyRequests),
)
async def login(
    body: LoginRequest,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> TokenResponse:
    """Email and password → a new token pair (a new refresh-token family)."""
    signed_in = await service.log_in(session, settings, limiter, client_ip(request), body)
    return _token_pair(settings, signed_in)


@router.post(
    "/refresh",
    response_model=TokenResponse,
    responses=problem_responses(InvalidToken, TokenExpired, TokenRevoked, TokenReused),
)
async def refresh(
    body: RefreshRequest, session: SessionDep, settings: SettingsDep, res: ResourcesDep
) -> TokenResponse:
    """Spend a refresh token for a new pair. Reusing a spent one revokes its whole family."""
    signed_in = await service.refresh(session, res.sessionmaker, settings, body.refresh_token)
    return _token_pair(settings, signed_in)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def logout(body: RefreshRequest, session: SessionDep, res: ResourcesDep) -> Response:
    """Revoke the presented refresh token's session (its family). Idempotent: always 204.
    The session's live streams (``GET /users/stream``) end."""
    await service.log_out(session, res.redis, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---- account recovery and verification (issue 32, docs/buyers.md) ------------------------------


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PasswordResetAccepted,
    responses=problem_responses(InvalidEmail, TooManyRequests),
)
async def password_reset(
    body: PasswordResetRequest,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> PasswordResetAccepted:
    """Ask for a password reset link. Always the same 202, whether the email has an account
    or not (only an account's address gets a mail: a link to
    ``{public url}/reset-password?token=…``, single use, valid
    ``EVENTLY_PASSWORD_RESET_MINUTES``). Limited per email and per client address (429)."""
    await service.request_password_reset(session, settings, limiter, client_ip(request), body)
    return PasswordResetAccepted()


@router.post(
    "/password-reset/confirm",
    response_model=PasswordResetDone,
    responses=problem_responses(ResetTokenInvalid, WeakPassword, TooManyRequests),
)
async def password_reset_confirm(
    body: PasswordResetConfirm,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
    res: ResourcesDep,
) -> PasswordResetDone:
    """Set a new password with the emailed token. The token works once; every refresh token
    of the account is revoked (log in again everywhere) and the address counts as verified.
    A weak password is refused (422) and the link keeps working."""
    await service.reset_password(session, res.redis, settings, limiter, client_ip(request), body)
    return PasswordResetDone()


@router.post(
    "/verify-email",
    response_model=EmailVerified,
    responses=problem_responses(VerificationTokenInvalid),
)
async def verify_email(body: VerifyEmailRequest, session: SessionDep) -> EmailVerified:
    """Prove the account's address with the token of the welcome mail's link
    (``{public url}/verify-email?token=…``). Using it again while it is valid gives the same
    answer; a link mailed to an address the account no longer has is refused."""
    await service.verify_email(session, body)
    return EmailVerified()


@router.post(
    "/verify-email/resend",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=VerificationSent,
    responses=problem_responses(TooManyRequests),
)
async def resend_verification(
    user: CurrentUser, session: SessionDep, settings: SettingsDep, limiter: RateLimiterDep
) -> VerificationSent:
    """Mail a fresh verification link to the signed-in account's address (the welcome's link
    expired or was lost; a changed address gets one by itself). Earlier links keep working
    while they live. Limited per account like reset requests per email (429)."""
    sent = await service.resend_verification(session, settings, limiter, user)
    return VerificationSent(status="sent" if sent else "already_verified")
