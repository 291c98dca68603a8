"""Bodies of the questions and attendees routes (issue 32)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.auth.schemas import Email, FullName
from evently.db.models import BookingAttendees, EventQuestion

Kind = Literal["text", "choice", "multiple_choice", "checkbox", "country"]
Per = Literal["ticket", "booking"]
Label = Annotated[FullName, Field(min_length=1, max_length=200)]
Option = Annotated[str, Field(min_length=1, max_length=200)]


class QuestionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: Label
    kind: Kind
    options: list[Option] = Field(default=[], max_length=50)
    required: bool = False
    per: Per = "ticket"
    ticket_type_ids: list[uuid.UUID] | None = Field(
        default=None, max_length=50, description="only seats of these types are asked"
    )


class QuestionPatch(BaseModel):
    """Fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")
    label: Label | None = None
    options: list[Option] | None = Field(default=None, max_length=50)
    required: bool | None = None
    per: Per | None = None
    ticket_type_ids: list[uuid.UUID] | None = Field(default=None, max_length=50)


class QuestionOut(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    label: str
    kind: str
    options: list[str]
    required: bool
    per: str
    ticket_type_ids: list[uuid.UUID] | None
    position: int

    @classmethod
    def of(cls, q: EventQuestion) -> QuestionOut:
        return cls(
            id=q.id,
            event_id=q.event_id,
            label=q.label,
            kind=q.kind,
            options=list(q.options or []),
            required=q.required,
            per=q.per,
            ticket_type_ids=q.ticket_type_ids,
            position=q.position,
        )


class QuestionList(BaseModel):
    items: list[QuestionOut]


Answer = str | bool | list[str] | None


class AttendeeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: FullName = ""
    email: Email | None = None
    answers: dict[str, Answer] = Field(default={}, max_length=100)


class AttendeesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attendees: list[AttendeeIn] = Field(max_length=1000, description="one per seat, in order")
    answers: dict[str, Answer] = Field(default={}, max_length=100, description="per booking")


class AttendeesOut(BaseModel):
    booking_id: uuid.UUID
    attendees: list[dict[str, Any]]
    answers: dict[str, Any]
    updated_at: datetime | None

    @classmethod
    def of(cls, booking_id: uuid.UUID, row: BookingAttendees | None) -> AttendeesOut:
        if row is None:
            return cls(booking_id=booking_id, attendees=[], answers={}, updated_at=None)
        return cls(
            booking_id=booking_id,
            attendees=list(row.attendees),
            answers=dict(row.answers),
            updated_at=row.updated_at,
        )


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[FullName, Field(min_length=1)]
    email: Email


class TransferOut(BaseModel):
    old_ticket_id: uuid.UUID
    ticket_id: uuid.UUID = Field(description="the new ticket (mailed to the new attendee)")
    name: str
    email: str


class TransferPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    allowed: bool = True
    deadline: datetime | None = Field(
        default=None, description="transfers end then (default: when the event starts)"
    )
