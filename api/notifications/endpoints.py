"""GET /users/notifications: the caller's notices (waitlist offers, confirmations, expiries,
refunds), newest first. Written by activities; a retried activity never writes one twice."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth.deps import CurrentUser
from api.deps import SessionDep
from api.http.links import PageLinksDep
from api.notifications.schemas import NotificationOut, NotificationPage
from evently import notifications

router = APIRouter(tags=["notifications"])
MAX_PAGE = 100_000


@router.get("/users/notifications", response_model=NotificationPage)
async def my_notifications(
    user: CurrentUser,
    session: SessionDep,
    links: PageLinksDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> NotificationPage:
    """Kinds: `waitlist_offer`, `waitlist_offer_expiring`, `waitlist_offer_expired`,
    `booking_confirmed`, `hold_expired`, `booking_cancelled`, `refund_issued`."""
    items, total = await notifications.list_for_user(session, user.id, page=page, limit=limit)
    links.set(page, limit, total, max_page=MAX_PAGE)
    return NotificationPage(
        items=[NotificationOut.model_validate(n) for n in items],
        total=total,
        page=page,
        limit=limit,
    )
