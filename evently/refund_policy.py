"""Who may refund a booking through Evently (issue 29): the event's ``refund_policy``.

- ``{"mode": "until", "hours_before_start": n}``: the buyer may cancel a confirmed booking
  (``DELETE /bookings/{id}``, ``cancel-lines``) until ``n`` hours before the event starts,
  that instant included; the organization's owners and finance may always. The default,
  with ``n = 0``: until the start.
- ``{"mode": "organizer_only"}``: buyers never; owners and finance may.
- ``{"mode": "none"}``: nobody refunds through Evently (the buyer's and the organizer's
  refund routes refuse). The event's own cancellation still refunds everyone: it does not ask
  this module.

Cancelling a *held* booking is no refund (nothing was paid) and is always allowed. Separately,
whatever the policy, a ticket that was checked in is never refunded through a buyer or
organizer route (evently/booking_changes.py, :func:`seal_booking`/:func:`request`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

MAX_HOURS = 24 * 366  # a year before the start at most


class RefundMode(StrEnum):
    UNTIL = "until"
    ORGANIZER_ONLY = "organizer_only"
    NONE = "none"


class RefundUntil(BaseModel):
    """Buyers may cancel until ``hours_before_start`` hours before the start."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Literal["until"]
    hours_before_start: int = Field(0, ge=0, le=MAX_HOURS, strict=True)


class RefundOrganizerOnly(BaseModel):
    """Buyers never; the organization's owners and finance may."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Literal["organizer_only"]


class RefundNone(BaseModel):
    """Nobody refunds through Evently (the event's cancellation still refunds everyone)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Literal["none"]


RefundPolicy = Annotated[
    RefundUntil | RefundOrganizerOnly | RefundNone, Field(discriminator="mode")
]
_ADAPTER: TypeAdapter[RefundUntil | RefundOrganizerOnly | RefundNone] = TypeAdapter(RefundPolicy)

DEFAULT: dict[str, Any] = {"mode": "until", "hours_before_start": 0}


def parse(raw: dict[str, Any] | None) -> RefundUntil | RefundOrganizerOnly | RefundNone:
    """The stored policy (a missing one is the default)."""
    return _ADAPTER.validate_python(raw if raw else DEFAULT)


def as_json(policy: RefundUntil | RefundOrganizerOnly | RefundNone) -> dict[str, Any]:
    return policy.model_dump(mode="json")


def to_json(value: BaseModel | dict[str, Any] | None) -> dict[str, Any]:
    """A policy (a model, a dict, or None for the default) as stored, validated."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return as_json(parse(value))


def buyer_deadline(
    policy: RefundUntil | RefundOrganizerOnly | RefundNone, starts_at: datetime
) -> datetime | None:
    """The last instant a buyer may cancel a confirmed booking; None: never."""
    if isinstance(policy, RefundUntil):
        return starts_at - timedelta(hours=policy.hours_before_start)
    return None


def buyer_may_refund(
    policy: RefundUntil | RefundOrganizerOnly | RefundNone, starts_at: datetime, now: datetime
) -> bool:
    """May the buyer cancel (and be refunded for) a confirmed booking now?"""
    deadline = buyer_deadline(policy, starts_at)
    return deadline is not None and now <= deadline


def organizer_may_refund(policy: RefundUntil | RefundOrganizerOnly | RefundNone) -> bool:
    """May the organization's owners and finance refund through Evently?"""
    return not isinstance(policy, RefundNone)


def describe(policy: RefundUntil | RefundOrganizerOnly | RefundNone) -> str:
    """One short sentence for buyers, shown before they pay."""
    if isinstance(policy, RefundUntil):
        if policy.hours_before_start == 0:
            return "Refunds: until the start of the event"
        return f"Refunds: until {policy.hours_before_start} h before the start"
    if isinstance(policy, RefundOrganizerOnly):
        return "Refunds: only by the organizer"
    return "Refunds: none"
