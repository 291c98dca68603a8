"""The platform admin's request bodies: the organizer's (api/organizer/schemas.py), and a venue
that may name its organization."""

from __future__ import annotations

import uuid

from api.organizer.schemas import (
    CancellationAccepted,
    EventCreate,
    EventPatch,
    VenueCreate,
)

__all__ = ["AdminVenueCreate", "CancellationAccepted", "EventCreate", "EventPatch", "VenueCreate"]


class AdminVenueCreate(VenueCreate):
    """The platform admin names the venue's organization (default: the default organization,
    which owns everything made before organizations existed)."""

    organization_id: uuid.UUID | None = None
