"""Support: find bookings (stuck holds first), see their history, release a hold."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query

from api.auth.deps import SupportUser
from api.deps import ResourcesDep, SessionDep
from api.support.schemas import (
    BookingHistory,
    HistoryEventOut,
    ReleaseRequest,
    ReleaseResponse,
    SupportBooking,
    SupportBookingPage,
)
from evently import support
from evently.db.models import Booking
from evently.errors import NotFound
from evently.resources import Resources

router = APIRouter(prefix="/support", tags=["support"])

PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "needs the support or admin role"},
    404: {"description": "unknown booking"},
    409: {"description": "not held, or its workflow is not running"},
    422: {"description": "invalid input"},
    503: {"description": "Temporal or the booking workers are unavailable"},
}


def _ui(res: Resources, workflow_id: str) -> str | None:
    return support.temporal_ui_link(
        res.endpoints.temporal_ui_url, res.settings.temporal_namespace, workflow_id
    )


@router.get("/bookings", response_model=SupportBookingPage, responses=PROBLEMS)
async def list_bookings(
    session: SessionDep,
    res: ResourcesDep,
    staff: SupportUser,
    status: Literal["held", "confirmed", "expired", "cancelled", "rejected"] | None = None,
    event_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    held_longer_than_seconds: Annotated[int | None, Query(ge=0, le=10**8)] = None,
    stuck: Annotated[bool, Query(description="held although the hold window is over")] = False,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SupportBookingPage:
    """Bookings newest first, with workflow ids and Temporal UI links."""
    now = datetime.now(UTC)
    rows, total = await support.find_bookings(
        session,
        support.BookingFilter(
            status=status,
            event_id=event_id,
            user_id=user_id,
            held_longer_than_seconds=held_longer_than_seconds,
            stuck=stuck,
        ),
        page=page,
        limit=limit,
        now=now,
    )
    return SupportBookingPage(
        items=[SupportBooking.of(b, now=now, ui_url=_ui(res, b.workflow_id)) for b in rows],
        total=total,
        page=page,
        limit=limit,
    )


async def _booking(session: SessionDep, booking_id: uuid.UUID) -> Booking:
    booking = await session.get(Booking, booking_id)
    if booking is None:
        raise NotFound("No such booking.", code="booking_not_found")
    return booking


@router.post("/bookings/{booking_id}/release", response_model=ReleaseResponse, responses=PROBLEMS)
async def release_booking(
    booking_id: uuid.UUID,
    session: SessionDep,
    res: ResourcesDep,
    staff: SupportUser,
    body: Annotated[ReleaseRequest | None, Body()] = None,
) -> ReleaseResponse:
    """End a held booking now, through its workflow (the `cancel` update, recorded with who
    asked): the seats go back exactly once. Never a direct database write."""
    booking = await _booking(session, booking_id)
    await session.commit()  # hand the connection back: the workflow round trip takes a while
    actor = f"support:{staff.id}"
    reason = (body or ReleaseRequest()).reason
    result = await support.release_hold(res.temporal, booking, actor=actor, reason=reason)
    return ReleaseResponse(
        booking_id=booking.id,
        status=result.booking_status,
        released=result.booking_status == "cancelled",
        released_by=actor,
        workflow_id=booking.workflow_id,
        temporal_ui_url=_ui(res, booking.workflow_id),
    )


@router.get("/bookings/{booking_id}/history", response_model=BookingHistory, responses=PROBLEMS)
async def booking_history(
    booking_id: uuid.UUID, session: SessionDep, res: ResourcesDep, staff: SupportUser
) -> BookingHistory:
    """What happened to a booking, from its workflow's event history (the same story the
    Temporal UI tells), plus the workflow's own state and log when a worker answers."""
    booking = await _booking(session, booking_id)
    await session.commit()
    story = await support.booking_story(res.temporal, booking.id)
    return BookingHistory(
        booking_id=booking.id,
        workflow_id=story.workflow_id,
        temporal_ui_url=_ui(res, story.workflow_id),
        run_status=story.run_status,
        booking_status=booking.status,
        state=story.state.model_dump(mode="json") if story.state else None,
        events=[
            HistoryEventOut(event_id=e.event_id, time=e.time, type=e.type, details=e.details)
            for e in story.events
        ],
        truncated=story.truncated,
    )
