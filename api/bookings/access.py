"""Who may act on a booking (issue 32): the buyer's access token, or — without an account —
the booking's access key (``Evently-Booking-Key`` header or ``?key=``), which stands for the
booking's owner on that one booking only. A guest booking (one made with a key) opens with the
owning account's token only once that account's email is verified (evently/booking_keys.py)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep, SettingsDep
from api.problems import DEPENDENCY_ERRORS
from evently import accounts, booking_keys
from evently.db.models import User
from evently.enums import Role
from evently.errors import BookingNotFound, InvalidToken, TokenExpired, Unauthorized
from evently.security import AccessClaims, decode_access_token

_bearer = HTTPBearer(auto_error=False)

KEY_HEADER = "Evently-Booking-Key"
KeyHeader = Annotated[
    str | None,
    Header(
        alias=KEY_HEADER,
        min_length=1,
        max_length=512,
        description="A guest booking's access key (instead of a bearer token)",
    ),
]
KeyQuery = Annotated[
    str | None,
    Query(
        alias="key",
        min_length=1,
        max_length=512,
        description="A guest booking's access key, as in its access link",
    ),
]
NO_CREDENTIALS = (
    "Send 'Authorization: Bearer <access token>', or the booking's access key "
    f"({KEY_HEADER} header or ?key=)."
)


async def optional_claims(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AccessClaims | None:
    """The access token's claims when one is sent (a bad one is 401), else None."""
    if credentials is None:
        return None
    if credentials.scheme.lower() != "bearer":
        raise Unauthorized("Send 'Authorization: Bearer <access token>'.")
    return decode_access_token(settings, credentials.credentials)


OptionalClaims = Annotated[AccessClaims | None, Depends(optional_claims)]
DEPENDENCY_ERRORS[optional_claims] = (Unauthorized, InvalidToken, TokenExpired)


async def user_for_booking(
    session: AsyncSession, claims: AccessClaims | None, key: str | None, booking_id: uuid.UUID
) -> User:
    """The account acting on ``booking_id``: with a key, the owner a live key of this
    booking stands for (a wrong, revoked or other booking's key: 404, token or not — a
    signed-in visitor may open someone's guest link); else the token's (a guest booking of
    an unverified account: 404); else 401."""
    if key:
        owner_id = await booking_keys.owner(session, booking_id, key)
        owner = await accounts.active_user(session, owner_id) if owner_id else None
        if owner is None:
            raise BookingNotFound()
        return owner
    if claims is not None:
        user = await accounts.active_user(session, claims.user_id)
        if user is None:
            raise InvalidToken("The access token is invalid.")
        staff = user.role in (Role.ADMIN, Role.SUPPORT)
        if not staff and not await booking_keys.visible_to_account(session, user, booking_id):
            raise BookingNotFound()
        return user
    raise Unauthorized(NO_CREDENTIALS)


async def booking_user(
    booking_id: uuid.UUID,
    session: SessionDep,
    claims: OptionalClaims,
    key_header: KeyHeader = None,
    key: KeyQuery = None,
) -> User:
    return await user_for_booking(session, claims, key_header or key, booking_id)


#: for routes with ``{booking_id}`` in the path: whoever may act on that booking
BookingUser = Annotated[User, Depends(booking_user)]
DEPENDENCY_ERRORS[booking_user] = (Unauthorized, BookingNotFound)
