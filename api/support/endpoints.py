"""Support: find bookings (stuck holds first), see their history, release a hold."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query
from pydantic import Field

from api.auth.deps import SupportUser
from api.bookings.endpoints import CANCEL_LINES_PROBLEMS, cancel_lines_answer
from api.bookings.schemas import CancelLinesRequest, CancelLinesResponse
from api.bookings.service import update_wait_seconds
from api.deps import ResourcesDep, SessionDep, TemporalDep, end_transaction
from api.http.links import PageLinksDep
from api.problems import problem_responses
from api.support import service
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
from evently.enums import BookingStatus
from evently.errors import (
    BookingNotFound,
    BookingNotHeld,
    ReleaseRefused,
    WorkflowNotFound,
    WorkflowNotRunning,
    WorkflowTimeout,
)
from evently.infra.resources import Resources
from evently.organizations import organization_of_event
from workflows.booking import client as booking_client

router = APIRouter(prefix="/support", tags=["support"])
MAX_PAGE = 100_000


def _ui(res: Resources, workflow_id: str) -> str | None:
    return support.temporal_ui_link(
        res.endpoints.temporal_ui_url, res.settings.temporal_namespace, workflow_id
    )


@router.get("/bookings", response_model=SupportBookingPage)
async def list_bookings(
    session: SessionDep,
    res: ResourcesDep,
    staff: SupportUser,
    links: PageLinksDep,
    status: Literal["held", "confirmed", "expired", "cancelled", "rejected"] | None = None,
    event_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    held_longer_than_seconds: Annotated[int | None, Query(ge=0, le=10**8)] = None,
    stuck: Annotated[bool, Query(description="held although the hold window is over")] = False,
    refund_failing: Annotated[
        bool, Query(description="the provider refuses the refund owed (retried meanwhile)")
    ] = False,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
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
            refund_failing=refund_failing,
        ),
        page=page,
        limit=limit,
        now=now,
    )
    links.set(page, limit, total, max_page=MAX_PAGE)
    return SupportBookingPage(
        items=[SupportBooking.of(b, now=now, ui_url=_ui(res, b.workflow_id)) for b in rows],
        total=total,
        page=page,
        limit=limit,
    )


async def _booking(session: SessionDep, booking_id: uuid.UUID) -> Booking:
    booking = await session.get(Booking, booking_id)
    if booking is None:
        raise BookingNotFound("No such booking.")
    return booking


@router.post(
    "/bookings/{booking_id}/release",
    response_model=ReleaseResponse,
    responses=problem_responses(
        BookingNotFound, BookingNotHeld, ReleaseRefused, WorkflowNotRunning, WorkflowTimeout
    ),
)
async def release_booking(
    booking_id: uuid.UUID,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
    staff: SupportUser,
    body: Annotated[ReleaseRequest | None, Body()] = None,
) -> ReleaseResponse:
    """End a held booking now, through its workflow (the `cancel` update, recorded with who
    asked): the seats go back exactly once. Never a direct database write."""
    booking = await _booking(session, booking_id)
    await end_transaction(session)  # hand the connection back: the workflow round trip is slow
    actor = f"support:{staff.id}"
    reason = (body or ReleaseRequest()).reason
    if booking.status != BookingStatus.HELD:
        raise BookingNotHeld(f"Only a held booking can be released; this one is {booking.status}.")
    result = await booking_client.cancel(
        temporal,
        booking.id,
        actor=actor,
        reason=reason,
        wait_seconds=update_wait_seconds(res.settings),
        held_only=True,
        organization_id=await organization_of_event(res.engine, booking.event_id),
    )
    return ReleaseResponse(
        booking_id=booking.id,
        status=result.booking_status,
        released=result.booking_status == BookingStatus.CANCELLED,
        released_by=actor,
        workflow_id=booking.workflow_id,
        temporal_ui_url=_ui(res, booking.workflow_id),
    )


@router.get(
    "/bookings/{booking_id}/history",
    response_model=BookingHistory,
    responses=problem_responses(BookingNotFound, WorkflowNotFound),
)
async def booking_history(
    booking_id: uuid.UUID,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
    staff: SupportUser,
) -> BookingHistory:
    """What happened to a booking, from its workflow's event history (the same story the
    Temporal UI tells), plus the workflow's own state and log when a worker answers."""
    booking = await _booking(session, booking_id)
    await end_transaction(session)  # hand the connection back before asking Temporal
    story = await booking_client.story(temporal, booking.id)
    return BookingHistory(
        booking_id=booking.id,
        workflow_id=story.workflow_id,
        temporal_ui_url=_ui(res, story.workflow_id),
        run_status=story.run_status,
        booking_status=booking.status,
        state=story.state.model_dump(mode="json") if story.state else None,
        summary=story.summary,
        current_details=story.details,
        events=[
            HistoryEventOut(event_id=e.event_id, time=e.time, type=e.type, details=e.details)
            for e in service.summarize(story.events)
        ],
        truncated=story.truncated,
    )


class SupportCancelLinesRequest(CancelLinesRequest):
    reason: str = Field(default="lines cancelled by support", min_length=1, max_length=200)


@router.post(
    "/bookings/{booking_id}/cancel-lines",
    response_model=CancelLinesResponse,
    responses=problem_responses(*CANCEL_LINES_PROBLEMS),
)
async def cancel_booking_lines(
    booking_id: uuid.UUID,
    body: SupportCancelLinesRequest,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
    staff: SupportUser,
) -> CancelLinesResponse:
    """Cancel part of a confirmed booking for the buyer, through its BookingChangeWorkflow
    (recorded with who asked): that part refunded, those seats released, those tickets
    revoked. Never a direct database write."""
    booking = await _booking(session, booking_id)
    return await cancel_lines_answer(
        session, temporal, res.settings, res, booking, body, f"support:{staff.id}", body.reason
    )
