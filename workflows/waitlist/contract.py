"""WaitlistWorkflow's contract: input, signal, update, query, and the local activities it
runs with their payloads. Light module: the workflow, its client, the booking workflow (which
hands freed seats over) and the activities import it."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from evently.waitlist import LeaveResult, OpenOffer

__all__ = ["LeaveResult", "OpenOffer"]

WORKFLOW_NAME = "WaitlistWorkflow"
SIGNAL_SEATS_FREED = "seats_freed"
# update: WaitlistWorkflow.leave
QUERY_STATE = "state"

# activities (local, booking task queue)
WAITLIST_SEATS_FREED = "waitlist_seats_freed"  # from BookingWorkflow: hand freed seats over
WAITLIST_ALLOCATE = "waitlist_allocate"
WAITLIST_EXPIRE_OFFER = "waitlist_expire_offer"
WAITLIST_REMIND = "waitlist_remind"
WAITLIST_LEAVE = "waitlist_leave"


def waitlist_workflow_id(event_id: uuid.UUID | str) -> str:
    return f"waitlist-{event_id}"


class WaitlistInput(BaseModel):
    event_id: uuid.UUID
    offer_seconds: int = 600
    # continue as new beyond this many history events (tests use a small one)
    max_history: int = 10_000


class WaitlistState(BaseModel):
    event_id: uuid.UUID
    open_offers: list[OpenOffer]
    history: list[str]


class SeatsFreed(BaseModel):
    event_id: uuid.UUID


class AllocateInput(BaseModel):
    event_id: uuid.UUID
    # the workflow's clock decides when offers made in this round lapse
    offer_expires_at: datetime


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
