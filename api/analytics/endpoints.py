"""GET /api/v1/admin/events/{event_id}/analytics: how the sale goes (admins)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from api.analytics.schemas import EventAnalyticsOut
from api.auth.deps import AdminUser
from api.deps import SessionDep
from api.problems import problem_responses
from evently.analytics import event_analytics
from evently.errors import EventNotFound

router = APIRouter(tags=["analytics"])


@router.get(
    "/admin/events/{event_id}/analytics",
    response_model=EventAnalyticsOut,
    summary="Sales analytics of one event",
    responses=problem_responses(EventNotFound),
)
async def get_event_analytics(
    event_id: uuid.UUID, session: SessionDep, admin: AdminUser
) -> EventAnalyticsOut:
    analytics = await event_analytics(session, event_id)
    if analytics is None:
        raise EventNotFound("No such event.")
    return EventAnalyticsOut.of(analytics)
