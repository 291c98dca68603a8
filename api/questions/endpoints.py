"""An event's questions for its organizers (owners, managers):
``/organizations/{org_id}/events/{event_id}/questions``; a booking's attendees and answers for
its buyer (token or access key): ``/bookings/{booking_id}/attendees`` (issue 32)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from api.bookings.access import BookingUser
from api.deps import SessionDep
from api.organizations.deps import EventManager
from api.organizer.service import own_event
from api.problems import problem_responses
from api.questions.schemas import (
    AttendeesIn,
    AttendeesOut,
    QuestionCreate,
    QuestionList,
    QuestionOut,
    QuestionPatch,
    TransferIn,
    TransferOut,
    TransferPolicy,
)
from evently import accounts, bookings, questions, transfers
from evently.db.models import Booking
from evently.errors import (
    AlreadyCheckedIn,
    AnswersInvalid,
    BookingNotConfirmed,
    BookingNotFound,
    EventNotFound,
    InvalidEmail,
    QuestionInvalid,
    QuestionNotFound,
    TicketNotFound,
    TicketRevoked,
    TransferClosed,
)

router = APIRouter(tags=["attendees and questions"])
ORG = "/organizations/{org_id}/events/{event_id}/questions"


@router.post(
    ORG,
    status_code=status.HTTP_201_CREATED,
    response_model=QuestionOut,
    responses=problem_responses(EventNotFound, QuestionInvalid),
    summary="Ask buyers a question per ticket or per booking (owners, managers)",
)
async def create_question(
    event_id: uuid.UUID, body: QuestionCreate, access: EventManager, session: SessionDep
) -> QuestionOut:
    event = await own_event(session, event_id, access.organization.id)
    spec = questions.QuestionSpec(**body.model_dump())
    return QuestionOut.of(await questions.create(session, event.id, spec))


@router.get(
    ORG,
    response_model=QuestionList,
    responses=problem_responses(EventNotFound),
    summary="An event's questions (owners, managers)",
)
async def list_questions(
    event_id: uuid.UUID, access: EventManager, session: SessionDep
) -> QuestionList:
    event = await own_event(session, event_id, access.organization.id)
    found = await questions.list_for_event(session, event.id)
    return QuestionList(items=[QuestionOut.of(q) for q in found])


@router.patch(
    ORG + "/{question_id}",
    response_model=QuestionOut,
    responses=problem_responses(EventNotFound, QuestionNotFound, QuestionInvalid),
    summary="Change a question (owners, managers)",
)
async def patch_question(
    event_id: uuid.UUID,
    question_id: uuid.UUID,
    body: QuestionPatch,
    access: EventManager,
    session: SessionDep,
) -> QuestionOut:
    event = await own_event(session, event_id, access.organization.id)
    question = await questions.get(session, event.id, question_id)
    changes = body.model_dump(exclude_unset=True)
    return QuestionOut.of(await questions.update(session, question, changes))


@router.delete(
    ORG + "/{question_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(EventNotFound, QuestionNotFound),
    summary="Remove a question (owners, managers); its answers stay in the bookings",
)
async def delete_question(
    event_id: uuid.UUID, question_id: uuid.UUID, access: EventManager, session: SessionDep
) -> Response:
    event = await own_event(session, event_id, access.organization.id)
    await questions.remove(session, await questions.get(session, event.id, question_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _booking(session: SessionDep, booking_id: uuid.UUID, user_id: uuid.UUID) -> Booking:
    booking = await bookings.get_booking(session, booking_id)
    if booking is None or booking.user_id != user_id:
        raise BookingNotFound()
    return booking


@router.put(
    "/bookings/{booking_id}/attendees",
    response_model=AttendeesOut,
    responses=problem_responses(BookingNotFound, AnswersInvalid, InvalidEmail),
    summary="Name the attendees (one per seat, in order) and answer the event's questions",
)
async def put_attendees(
    booking_id: uuid.UUID, body: AttendeesIn, user: BookingUser, session: SessionDep
) -> AttendeesOut:
    """Replaces what was given before. Per-ticket answers sit with each attendee, per-booking
    ones in `answers` (keys: question ids). With the buyer's token or the booking's key."""
    booking = await _booking(session, booking_id, user.id)
    attendees = [
        {
            "name": a.name,
            "email": accounts.normalize_email(a.email) if a.email else None,
            "answers": a.answers,
        }
        for a in body.attendees
    ]
    row = await questions.save(session, booking, attendees, body.answers)
    await session.refresh(row, ["updated_at"])
    return AttendeesOut.of(booking.id, row)


@router.get(
    "/bookings/{booking_id}/attendees",
    response_model=AttendeesOut,
    responses=problem_responses(BookingNotFound),
    summary="The booking's attendees and answers",
)
async def get_attendees(
    booking_id: uuid.UUID, user: BookingUser, session: SessionDep
) -> AttendeesOut:
    booking = await _booking(session, booking_id, user.id)
    return AttendeesOut.of(booking.id, await questions.of_booking(session, booking.id))


# ---- ticket transfer (issue 32) ------------------------------------------------------------


@router.post(
    "/bookings/{booking_id}/tickets/{ticket_id}/transfer",
    response_model=TransferOut,
    responses=problem_responses(
        BookingNotFound,
        BookingNotConfirmed,
        TicketNotFound,
        TicketRevoked,
        AlreadyCheckedIn,
        TransferClosed,
        InvalidEmail,
    ),
    summary="Give a ticket to someone else: its QR stops working, a new ticket is mailed to them",
)
async def transfer_ticket(
    booking_id: uuid.UUID,
    ticket_id: uuid.UUID,
    body: TransferIn,
    user: BookingUser,
    session: SessionDep,
) -> TransferOut:
    """One atomic change: the ticket is revoked (the door answers `409 ticket_revoked` for its
    QR), a new ticket for the same seat type is issued to `{name, email}` and mailed to them,
    the change is audited. Retrying the same transfer answers the same new ticket; of
    concurrent transfers of one ticket exactly one makes a new ticket. Allowed until the
    event's transfer deadline (default: its start) unless the event switched transfers off
    (`409 transfer_closed`). With the buyer's token or the booking's key."""
    booking = await _booking(session, booking_id, user.id)
    done = await transfers.transfer(
        session,
        booking,
        ticket_id,
        name=body.name,
        email=accounts.normalize_email(body.email),
        actor=f"user:{user.id}",
        actor_user_id=user.id,
    )
    return TransferOut(
        old_ticket_id=done.old_ticket_id,
        ticket_id=done.new_ticket_id,
        name=done.name,
        email=done.email,
    )


@router.put(
    "/organizations/{org_id}/events/{event_id}/transfer-policy",
    response_model=TransferPolicy,
    responses=problem_responses(EventNotFound),
    summary="Allow or forbid ticket transfers, and until when (owners, managers)",
)
async def put_transfer_policy(
    event_id: uuid.UUID, body: TransferPolicy, access: EventManager, session: SessionDep
) -> TransferPolicy:
    event = await own_event(session, event_id, access.organization.id)
    await transfers.set_policy(session, event.id, allowed=body.allowed, deadline=body.deadline)
    return body
