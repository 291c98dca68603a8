"""A buyer's notifications (offers, confirmations, expiries, refunds, cancellations). They are
written by the statements that make the change they report (evently/inventory/seats.py,
evently/waitlist.py, evently/events.py, evently/payments/records.py), deduplicated by key."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from evently.db.models import Notification


async def list_for_user(
    session: AsyncSession, user_id: uuid.UUID, *, page: int, limit: int
) -> tuple[list[Notification], int]:
    """Newest first."""
    total = await session.scalar(
        select(func.count()).select_from(Notification).where(Notification.user_id == user_id)
    )
    rows = await session.scalars(
        select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .offset((page - 1) * limit)
        .limit(limit)
    )
    return list(rows), int(total or 0)
