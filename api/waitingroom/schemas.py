"""The waiting room's answers."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from api.auth.schemas import GuestBuyer
from evently.enums import QueueState


class QueueJoinRequest(BaseModel):
    """A guest's join (issue 32): without a bearer token, who will buy."""

    model_config = ConfigDict(extra="forbid")
    buyer: GuestBuyer = Field(
        description="guest checkout: only without a bearer token; the admission is good for a "
        "guest reserve with this email (docs/buyers.md)"
    )


class QueueTicketOut(BaseModel):
    """A buyer's place in an event's waiting room (the same answer to ``POST .../queue`` and
    ``GET .../queue/{queue_ticket}``)."""

    queue_ticket: str = Field(description="Opaque; names this buyer's place in this event's line.")
    event_id: uuid.UUID
    state: QueueState
    position: int = Field(
        description="Buyers admitted before you, counting you: 1 = next; 0 once admitted."
    )
    estimated_wait_seconds: int = Field(description="At the current admission rate.")
    poll_after_seconds: int = Field(
        description="When to ask again (or listen to GET /api/v1/users/stream)."
    )
    admission_token: str | None = Field(
        None,
        description="Once admitted: send it as the `Admission-Token` header of "
        "`POST /api/v1/bookings/reserve` before `admission_expires_at`.",
    )
    admission_expires_at: int | None = Field(None, description="Unix seconds.")
