"""Attendees and questions (issue 32): what an event's organizer asks, and a booking's answers.

A question is asked ``per`` ticket (each attendee answers) or per booking (once), optionally
only for seats of some ticket types. A booking's attendees are one per seat, in the booking's
order (its lines in the ticket types' order, each line's seats in a row): name, email and the
per-ticket answers; per-booking answers sit beside them (``booking_attendees``). Confirming a
booking while a required question is unanswered is refused (422 ``answers_required``, naming
the questions). Flush only: the caller commits.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from evently.db.models import Booking, BookingAttendees, EventQuestion
from evently.errors import (
    AnswersClosed,
    AnswersInvalid,
    AnswersRequired,
    QuestionInvalid,
    QuestionNotFound,
)
from evently.ticket_types import booking_lines

MAX_TEXT = 1000
_COUNTRY = re.compile(r"^[A-Z]{2}$")  # ISO 3166-1 alpha-2


@dataclass(frozen=True)
class QuestionSpec:
    label: str
    kind: str
    options: list[str]
    required: bool
    per: str
    ticket_type_ids: list[uuid.UUID] | None


def check_spec(spec: QuestionSpec) -> None:
    if spec.kind in ("choice", "multiple_choice"):
        if not spec.options or len(set(spec.options)) != len(spec.options):
            raise QuestionInvalid("options: a choice needs distinct options.")
    elif spec.options:
        raise QuestionInvalid(f"options: a {spec.kind} question has none.")


async def _touch_event(session: AsyncSession, event_id: uuid.UUID) -> None:
    """The public event shows its questions: its ETag moves with them."""
    await session.execute(
        text("UPDATE events SET updated_at = now() WHERE id = :e"), {"e": event_id}
    )


async def create(session: AsyncSession, event_id: uuid.UUID, spec: QuestionSpec) -> EventQuestion:
    check_spec(spec)
    count = await session.scalar(
        text("SELECT count(*) FROM event_questions WHERE event_id = :e"), {"e": event_id}
    )
    question = EventQuestion(
        event_id=event_id,
        label=spec.label,
        kind=spec.kind,
        options=spec.options,
        required=spec.required,
        per=spec.per,
        ticket_type_ids=spec.ticket_type_ids,
        position=int(count or 0),
    )
    session.add(question)
    await session.flush()
    await _touch_event(session, event_id)
    await session.refresh(question, ["created_at"])
    return question


async def list_for_event(session: AsyncSession, event_id: uuid.UUID) -> list[EventQuestion]:
    rows = await session.scalars(
        select(EventQuestion)
        .where(EventQuestion.event_id == event_id)
        .order_by(EventQuestion.position, EventQuestion.created_at)
    )
    return list(rows)


async def clone(
    session: AsyncSession,
    source_id: uuid.UUID,
    target_id: uuid.UUID,
    types: dict[uuid.UUID, uuid.UUID],
) -> int:
    """Copy an event's questions to its clone (in order), their ticket types mapped to the
    copies (``types``); no answers. Returns how many."""
    copied = await list_for_event(session, source_id)
    for q in copied:
        session.add(
            EventQuestion(
                event_id=target_id,
                label=q.label,
                kind=q.kind,
                options=list(q.options),
                required=q.required,
                per=q.per,
                ticket_type_ids=(
                    None
                    if q.ticket_type_ids is None
                    else [types[t] for t in q.ticket_type_ids if t in types]
                ),
                position=q.position,
            )
        )
    await session.flush()
    return len(copied)


async def get(session: AsyncSession, event_id: uuid.UUID, question_id: uuid.UUID) -> EventQuestion:
    found = await session.get(EventQuestion, question_id)
    if found is None or found.event_id != event_id:
        raise QuestionNotFound()
    return found


async def update(
    session: AsyncSession, question: EventQuestion, changes: dict[str, Any]
) -> EventQuestion:
    for name, value in changes.items():
        setattr(question, name, value)
    check_spec(
        QuestionSpec(
            question.label,
            question.kind,
            list(question.options or []),
            question.required,
            question.per,
            question.ticket_type_ids,
        )
    )
    await session.flush()
    await _touch_event(session, question.event_id)
    return question


async def remove(session: AsyncSession, question: EventQuestion) -> None:
    await session.execute(delete(EventQuestion).where(EventQuestion.id == question.id))
    await _touch_event(session, question.event_id)


# ---- answers ---------------------------------------------------------------------------------


def _valid(question: EventQuestion, value: Any) -> bool:
    kind = question.kind
    if kind == "text":
        return isinstance(value, str) and len(value) <= MAX_TEXT and "\x00" not in value
    if kind == "choice":
        return isinstance(value, str) and value in (question.options or [])
    if kind == "multiple_choice":
        return (
            isinstance(value, list)
            and all(isinstance(v, str) and v in (question.options or []) for v in value)
            and len(set(value)) == len(value)
        )
    if kind == "checkbox":
        return isinstance(value, bool)
    return isinstance(value, str) and bool(_COUNTRY.match(value))  # country


def _answered(question: EventQuestion, value: Any) -> bool:
    if value is None:
        return False
    if question.kind == "checkbox":
        return value is True
    return bool(value.strip()) if isinstance(value, str) else bool(value)


async def seat_types(session: AsyncSession, booking: Booking) -> list[uuid.UUID | None]:
    """The ticket type of each seat, in the booking's order (None: a booking of no lines)."""
    lines = (await booking_lines(session, [booking.id]))[booking.id]
    if not lines:
        return [None] * booking.quantity
    seats: list[uuid.UUID | None] = []
    for line, _ in lines:
        seats.extend([line.ticket_type_id] * line.quantity)
    return seats


def _applies(question: EventQuestion, seat_type: uuid.UUID | None) -> bool:
    return not question.ticket_type_ids or seat_type in question.ticket_type_ids


def _check_answers(
    questions: dict[str, EventQuestion], answers: dict[str, Any], per: str, where: str
) -> None:
    for qid, value in answers.items():
        question = questions.get(qid)
        if question is None or question.per != per:
            raise AnswersInvalid(f"{where}: no {per} question {qid} for this event.")
        if value is not None and not _valid(question, value):
            raise AnswersInvalid(f"{where}.{qid}: not a valid answer to {question.label!r}.")


async def save(
    session: AsyncSession,
    booking: Booking,
    attendees: list[dict[str, Any]],
    answers: dict[str, Any],
) -> BookingAttendees:
    """Replace the booking's attendees (one per seat) and per-booking answers; refused with
    409 ``answers_closed`` once the event's ``attendee_answers_until`` has passed (the
    database's clock decides)."""
    closed = await session.scalar(
        text("SELECT attendee_answers_until <= now() FROM events WHERE id = :e"),
        {"e": booking.event_id},
    )
    if closed:
        raise AnswersClosed("The organizer's deadline for attendees' names and answers has passed.")
    seats = await seat_types(session, booking)
    if len(attendees) != len(seats):
        raise AnswersInvalid(f"attendees: one per seat ({len(seats)}), in the booking's order.")
    questions = {str(q.id): q for q in await list_for_event(session, booking.event_id)}
    for i, attendee in enumerate(attendees):
        _check_answers(questions, attendee.get("answers") or {}, "ticket", f"attendees[{i}]")
    _check_answers(questions, answers, "booking", "answers")
    row = await session.get(BookingAttendees, booking.id)
    if row is None:
        row = BookingAttendees(booking_id=booking.id)
        session.add(row)
    row.attendees = attendees
    row.answers = answers
    await session.flush()
    await session.execute(
        text("UPDATE booking_attendees SET updated_at = now() WHERE booking_id = :b"),
        {"b": booking.id},
    )
    return row


async def of_booking(session: AsyncSession, booking_id: uuid.UUID) -> BookingAttendees | None:
    return await session.get(BookingAttendees, booking_id)


async def missing_required(session: AsyncSession, booking: Booking) -> list[EventQuestion]:
    """The required questions the booking has not answered yet (for some seat, or at all)."""
    questions = [q for q in await list_for_event(session, booking.event_id) if q.required]
    if not questions:
        return []
    row = await session.get(BookingAttendees, booking.id)
    attendees = list(row.attendees) if row else []
    answers = dict(row.answers) if row else {}
    seats = await seat_types(session, booking)
    missing = []
    for q in questions:
        if q.per == "booking":
            if not any(_applies(q, t) for t in seats) or _answered(q, answers.get(str(q.id))):
                continue
            missing.append(q)
            continue
        for i, seat_type in enumerate(seats):
            if not _applies(q, seat_type):
                continue
            given = (attendees[i].get("answers") or {}) if i < len(attendees) else {}
            if not _answered(q, given.get(str(q.id))):
                missing.append(q)
                break
    return missing


async def require_answers(session: AsyncSession, booking: Booking) -> None:
    """422 ``answers_required`` naming the questions, while any required one is unanswered."""
    missing = await missing_required(session, booking)
    if missing:
        names = ", ".join(f"{q.label!r} ({q.id})" for q in missing)
        raise AnswersRequired(
            f"Answer the required questions first (PUT /bookings/{booking.id}/attendees): {names}."
        )


# ---- the organizer's deadline for answers (issue 32) -------------------------------------------


async def answers_until(session: AsyncSession, event_id: uuid.UUID) -> datetime | None:
    found: datetime | None = await session.scalar(
        text("SELECT attendee_answers_until FROM events WHERE id = :e"), {"e": event_id}
    )
    return found


async def set_answers_until(
    session: AsyncSession, event_id: uuid.UUID, until: datetime | None
) -> None:
    await session.execute(
        text("UPDATE events SET attendee_answers_until = :u, updated_at = now() WHERE id = :e"),
        {"u": until, "e": event_id},
    )
