"""Joining and reading the waiting room (evently/waitingroom.py) for the API."""

from __future__ import annotations

import logging
import math
import time
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from api.waitingroom.schemas import QueueTicketOut
from evently import waitingroom
from evently.enums import EventStatus, QueueMode, QueueState
from evently.errors import EventNotFound, EventNotOnSale, QueueOff
from evently.settings import Settings
from evently.waitingroom import Line, WaitingRoom
from workflows.admission import client as admission_client
from workflows.connection import TemporalClient

log = logging.getLogger("evently.api.waitingroom")

RUNNING_CACHE_SECONDS = 5.0
_running: dict[uuid.UUID, float] = {}  # event → when this process last made sure it runs


def status(
    settings: Settings,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    place: int,
    line: Line,
    guest_tag: str | None = None,
) -> QueueTicketOut:
    """The place's answer (``guest_tag``: a guest's place, ``user_id`` its guest session)."""
    secret = settings.jwt_secret
    if guest_tag is None:
        ticket = waitingroom.queue_ticket(secret, event_id, user_id, place)
    else:
        ticket = waitingroom.guest_queue_ticket(secret, event_id, user_id, place, guest_tag)
    common = {"queue_ticket": ticket, "event_id": event_id}
    if line.admitted_through >= place:
        admitted_at_ms = line.admitted_at_ms or int(time.time() * 1000)
        expires_at = waitingroom.expiry(admitted_at_ms, settings.queue_admission_seconds)
        if expires_at <= time.time():
            return QueueTicketOut(
                **common,
                state=QueueState.EXPIRED,
                position=0,
                estimated_wait_seconds=0,
                poll_after_seconds=0,
            )
        return QueueTicketOut(
            **common,
            state=QueueState.ADMITTED,
            position=0,
            estimated_wait_seconds=0,
            poll_after_seconds=0,
            admission_token=waitingroom.admission_token(
                secret, event_id, user_id, place, expires_at
            )
            if guest_tag is None
            else waitingroom.guest_admission_token(
                secret, event_id, user_id, place, expires_at, guest_tag
            ),
            admission_expires_at=expires_at,
        )
    position = line.position(place)
    if line.sold_out:
        return QueueTicketOut(
            **common,
            state=QueueState.SOLD_OUT,
            position=position,
            estimated_wait_seconds=0,
            poll_after_seconds=15,  # seats may come back (expired holds): ask now and then
        )
    rate = max(line.rate or settings.queue_start_rate, settings.queue_min_rate)
    wait = math.ceil(position / rate + settings.queue_tick_seconds)
    return QueueTicketOut(
        **common,
        state=QueueState.WAITING,
        position=position,
        estimated_wait_seconds=wait,
        poll_after_seconds=min(15, max(1, wait // 2)),
    )


async def join(
    engine: AsyncEngine,
    settings: Settings,
    temporal: TemporalClient,
    room: WaitingRoom,
    *,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
) -> QueueTicketOut:
    """A place in the line (the same one when asked again), kept in Redis before the answer
    (the admission tick copies it to Postgres)."""
    row = await _open_line(engine, event_id)
    immediate = row.queue == QueueMode.AUTO and not await room.saturated(event_id)
    place = await room.join(event_id, user_id, immediate=immediate)
    await _ensure_admission(settings, temporal, event_id, row.organization_id)
    return status(settings, event_id, user_id, place.place, place.line)


async def join_as_guest(
    engine: AsyncEngine,
    settings: Settings,
    temporal: TemporalClient,
    room: WaitingRoom,
    *,
    event_id: uuid.UUID,
    email: str,
) -> QueueTicketOut:
    """A guest's place (issue 32): a new place at the back of the line for a new guest session,
    bound to the (normalized) email; admitted in join order like everyone's, and its admission
    token is good for a guest reserve with that email only (docs/buyers.md)."""
    row = await _open_line(engine, event_id)
    immediate = row.queue == QueueMode.AUTO and not await room.saturated(event_id)
    session_id = uuid.uuid4()
    place = await room.join(event_id, session_id, immediate=immediate)
    await _ensure_admission(settings, temporal, event_id, row.organization_id)
    tag = waitingroom.guest_tag(settings.jwt_secret, email)
    return status(settings, event_id, session_id, place.place, place.line, tag)


async def _open_line(engine: AsyncEngine, event_id: uuid.UUID) -> Any:
    """The event's on-sale facts, when its waiting room can be joined."""
    row = await waitingroom.on_sale_facts(engine, event_id)
    if row is None:
        raise EventNotFound()
    if row.status != EventStatus.PUBLISHED:
        raise EventNotOnSale()
    if row.queue == QueueMode.OFF:
        raise QueueOff()
    return row


async def _ensure_admission(
    settings: Settings,
    temporal: TemporalClient,
    event_id: uuid.UUID,
    organization_id: uuid.UUID | None,
) -> None:
    """The event's admission workflow runs (one Temporal call per process every few seconds
    at most). A failure is logged, not raised: the place is kept and committed, and the next
    join (or the organizer's change) starts the workflow."""
    now = time.monotonic()
    if now - _running.get(event_id, -RUNNING_CACHE_SECONDS) < RUNNING_CACHE_SECONDS:
        return
    try:
        await admission_client.ensure_running(
            temporal,
            event_id,
            tick_seconds=settings.queue_tick_seconds,
            organization_id=organization_id,
        )
        _running[event_id] = now
    except Exception as exc:  # Temporal down: the line keeps its places, admission waits
        log.warning("could not start the admission workflow of %s: %s", event_id, exc)
