"""Public event browsing: GET /events, /events/{id}, /events/{id}/availability."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import RedisDep, SessionDep
from api.events.schemas import (
    AvailabilityOut,
    EventDetailOut,
    EventOut,
    EventPage,
    PublicQuestionOut,
    ReasonableDate,
    StorableText,
    TicketTypeAvailabilityOut,
)
from api.http.conditional import IfNoneMatch, conditional_responses, etag, validated
from api.http.dates import starts_between
from api.http.links import PageLinksDep
from api.problems import problem_responses
from evently import questions
from evently.enums import EventStatus
from evently.errors import EventNotFound, InvalidDateRange
from evently.events import EventFilters, event_not_found, get_event, list_published_events
from evently.inventory import availability

router = APIRouter(prefix="/events", tags=["events"])

MAX_LIMIT = 100
MAX_PAGE = 10_000


@router.get(
    "",
    response_model=EventPage,
    summary="Published events, soonest first",
    responses=problem_responses(InvalidDateRange),
)
async def list_events(
    session: SessionDep,
    links: PageLinksDep,
    city: Annotated[StorableText | None, Query(max_length=120, description="venue city")] = None,
    type: Annotated[
        StorableText | None, Query(max_length=50, description="event type, e.g. concert")
    ] = None,
    date_from: Annotated[
        ReasonableDate | None,
        Query(description="starts at or after (date = from 00:00 UTC, or an ISO datetime)"),
    ] = None,
    date_to: Annotated[
        ReasonableDate | None,
        Query(description="starts at or before (a date covers the whole UTC day)"),
    ] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
) -> EventPage:
    starts_from, starts_before = starts_between(date_from, date_to)
    filters = EventFilters(
        city=city, event_type=type, starts_from=starts_from, starts_before=starts_before
    )
    items, total = await list_published_events(
        session, filters, offset=(page - 1) * limit, limit=limit
    )
    links.set(page, limit, total, max_page=MAX_PAGE)
    return EventPage(items=[EventOut.of(e) for e in items], total=total, page=page, limit=limit)


@router.get(
    "/{event_id}",
    response_model=EventDetailOut,
    summary="One event with its venue and its visible ticket types",
    responses={**problem_responses(EventNotFound), **conditional_responses()},
)
async def read_event(
    event_id: uuid.UUID,
    session: SessionDep,
    redis: RedisDep,
    response: Response,
    if_none_match: IfNoneMatch = None,
) -> EventDetailOut | Response:
    """Tagged with an `ETag` that changes with any change to the event (seat counts
    included): send it back in `If-None-Match` to get `304 Not Modified` instead."""
    event = await get_event(session, event_id)
    if event is None or event.status == EventStatus.DRAFT:  # drafts are the organizer's business
        raise event_not_found(event_id)
    # the venue never changes (no endpoint edits one); the event's updated_at moves with
    # every UPDATE of its row
    version = availability.version_of(event.updated_at)
    now = datetime.now(UTC)
    types = [
        TicketTypeAvailabilityOut.of(t, now)
        for t in await availability.read_types(redis, session, event.id, version)
    ]
    # the types' on_sale flags too: a sales window opening or closing changes the answer
    tag = etag("event", event.id, version, "".join("1" if t.on_sale else "0" for t in types))
    if (found := validated(response, tag, if_none_match)) is not None:
        return found
    asked = [
        PublicQuestionOut(
            id=q.id,
            label=q.label,
            kind=q.kind,
            options=list(q.options or []),
            required=q.required,
            per=q.per,
            ticket_type_ids=q.ticket_type_ids,
        )
        for q in await questions.list_for_event(session, event.id)
    ]
    return EventDetailOut(**EventOut.of(event).model_dump(), ticket_types=types, questions=asked)


@router.get(
    "/{event_id}/availability",
    response_model=AvailabilityOut,
    summary="Live seat counts (Redis cache, Postgres fallback)",
    responses={**problem_responses(EventNotFound), **conditional_responses()},
)
async def read_availability(
    event_id: uuid.UUID,
    session: SessionDep,
    redis: RedisDep,
    response: Response,
    if_none_match: IfNoneMatch = None,
) -> AvailabilityOut | Response:
    """Polled by every buyer's page during an on-sale: send the last `ETag` back in
    `If-None-Match` and get an empty `304` while nothing changed (answered from Redis)."""
    snapshot = await availability.read(redis, session, event_id)
    if snapshot is None or snapshot.status == EventStatus.DRAFT:
        raise event_not_found(event_id)
    now = datetime.now(UTC)
    types = [
        TicketTypeAvailabilityOut.of(t, now)
        for t in await availability.read_types(redis, session, event_id, snapshot.version)
    ]
    tag = etag(
        "availability",
        snapshot.version,
        snapshot.capacity,
        snapshot.available,
        snapshot.held,
        snapshot.sold,
        snapshot.status,
        snapshot.waitlist_length,
        "".join("1" if t.on_sale else "0" for t in types),
    )
    return validated(response, tag, if_none_match) or AvailabilityOut.of(snapshot, types)
