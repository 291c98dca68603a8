"""Activity inputs/outputs of the waitlist (light: the workflows import these)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

# activity names (local activities on the booking task queue)
WAITLIST_SEATS_FREED = "waitlist_seats_freed"  # from BookingWorkflow: hand freed seats over
WAITLIST_ALLOCATE = "waitlist_allocate"
WAITLIST_EXPIRE_OFFER = "waitlist_expire_offer"
WAITLIST_REMIND = "waitlist_remind"
WAITLIST_LEAVE = "waitlist_leave"


class SeatsFreed(BaseModel):
    event_id: uuid.UUID


class AllocateInput(BaseModel):
    event_id: uuid.UUID
    # the workflow's clock decides when offers made in this round lapse
    offer_expires_at: datetime


class OpenOffer(BaseModel):
    entry_id: uuid.UUID
    user_id: uuid.UUID
    offer_id: str
    seats: int
    expires_at: datetime


class AllocateResult(BaseModel):
    open_offers: list[OpenOffer] = []  # every open offer of the event (new and earlier ones)
    offered: list[str] = []  # offer ids made in this round
    returned_to_public: int = 0
    pooled: int = 0  # seats still kept for the waitlist (nobody waiting fits them yet)
    closed: bool = False  # the event is no longer on sale: the waitlist was closed


class OfferRef(BaseModel):
    event_id: uuid.UUID
    entry_id: uuid.UUID
    offer_id: str


class LeaveInput(BaseModel):
    event_id: uuid.UUID
    entry_id: uuid.UUID
    user_id: uuid.UUID


class LeaveResult(BaseModel):
    entry_id: uuid.UUID
    # left: this call (or an earlier attempt) took the buyer off the waitlist;
    # otherwise the entry's current status (accepted, expired: nothing changed)
    status: Literal["left", "accepted", "expired", "waiting", "offered", "unknown"]
    declined_offer: str | None = None  # the offer id given back, when an open offer was declined
    seats_returned: int = 0
