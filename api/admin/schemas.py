"""What the platform admin's deprecated ``/admin`` aliases take besides the organizer's bodies
(api/organizer/schemas.py): a venue that may name its organization."""

from __future__ import annotations

import uuid

from api.organizer.schemas import VenueCreate


class AdminVenueCreate(VenueCreate):
    """The platform admin names the venue's organization (default: the default organization,
    which owns everything made before organizations existed)."""

    organization_id: uuid.UUID | None = None
