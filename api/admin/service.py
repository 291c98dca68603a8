"""What an organizer's change sets off after it commits: the availability snapshot, the
sold-out gate, the search index; and an event's cancellation through its workflow."""

from __future__ import annotations

import asyncio
import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from evently import events
from evently.db.models import Event
from evently.enums import EventStatus
from evently.infra.resources import Resources
from evently.inventory import availability
from evently.inventory.gate import Gate
from workflows.connection import TemporalClient
from workflows.event_cancellation import client as cancellation_client
from workflows.search_sync.client import request_index_write

log = logging.getLogger("evently.api.admin")


async def after_commit(
    res: Resources,
    temporal: TemporalClient,
    session: AsyncSession,
    event_id: uuid.UUID,
    *,
    seats_changed: bool,
) -> None:
    """After the commit: availability snapshot, sold-out gate, search index. Best effort: the
    change is committed; a lost cache write expires (TTL) and the index can be rebuilt."""
    await availability.refresh(res.redis, session, event_id)
    if seats_changed:
        await Gate(res.redis).reset(event_id)
    try:
        await asyncio.wait_for(request_index_write(temporal, event_id), timeout=5)
    except Exception as exc:
        log.warning("could not request the index write of event %s: %r", event_id, exc)


async def cancel_event(
    res: Resources,
    temporal: TemporalClient,
    session: AsyncSession,
    event: Event,
    admin_id: uuid.UUID,
) -> str:
    """Start the cancellation workflow, then mark the event cancelled at once (the workflow
    does that too, idempotently). The workflow starts first: a 503 from Temporal leaves the
    event untouched, and once it runs every booking is cancelled even if we crash here."""
    events.check_transition(event.status, EventStatus.CANCELLED)
    await session.commit()  # end the read transaction before talking to Temporal
    workflow_id = await cancellation_client.start(
        temporal, event.id, requested_by=f"admin:{admin_id}"
    )
    await events.mark_cancelled(session, event.id)
    await session.commit()
    await after_commit(res, temporal, session, event.id, seats_changed=True)
    return workflow_id
