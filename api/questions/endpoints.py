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
)
from evently import accounts, bookings, questions
from evently.db.models import Booking
from evently.errors import (
    AnswersInvalid,
    BookingNotFound,
    EventNotFound,
    InvalidEmail,
    QuestionInvalid,
    QuestionNotFound,
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
