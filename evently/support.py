"""Support tooling's queries: find bookings (stuck holds first), link them to the Temporal UI.

Releasing a hold and reading a booking's history go through its workflow (workflows/booking/
client.py): never a direct database write.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from evently.db.models import Booking
from evently.enums import BookingStatus


def temporal_ui_link(ui_url: str | None, namespace: str, workflow_id: str) -> str | None:
    if not ui_url:
        return None
    return (
        f"{ui_url.rstrip('/')}/namespaces/{quote(namespace, safe='')}"
        f"/workflows/{quote(workflow_id, safe='')}"
    )


@dataclass
class BookingFilter:
    status: str | None = None
    event_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    held_longer_than_seconds: int | None = None
    stuck: bool = False
    refund_failing: bool = False  # issue 35: the provider refuses the refund owed


async def find_bookings(
    session: AsyncSession, f: BookingFilter, *, page: int, limit: int, now: datetime | None = None
) -> tuple[list[Booking], int]:
    """Newest first. ``stuck``: still held although the hold window is over (its workflow
    should have ended it: a worker pool is down or the workflow is failing)."""
    now = now or datetime.now(UTC)
    conds = []
    if f.status:
        conds.append(Booking.status == f.status)
    if f.event_id:
        conds.append(Booking.event_id == f.event_id)
    if f.user_id:
        conds.append(Booking.user_id == f.user_id)
    if f.held_longer_than_seconds is not None:
        conds.append(Booking.status == BookingStatus.HELD)
        conds.append(Booking.created_at < now - timedelta(seconds=f.held_longer_than_seconds))
    if f.stuck:
        # served by the partial index ix_bookings_held_expiry (hold_expires_at WHERE held)
        conds.append(Booking.status == BookingStatus.HELD)
        conds.append(Booking.hold_expires_at < now)
    if f.refund_failing:
        conds.append(Booking.refund_failing_since.is_not(None))
    total = await session.scalar(select(func.count()).select_from(Booking).where(*conds))
    rows = await session.scalars(
        select(Booking)
        .where(*conds)
        .order_by(Booking.created_at.desc(), Booking.id.desc())
        .offset((page - 1) * limit)
        .limit(limit)
    )
    return list(rows), int(total or 0)
