"""Reading search documents from Postgres, the source of truth (all of search's event SQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from evently.db.models import Event, TicketType, Venue
from evently.search.base import SearchDocument

INDEXED_STATUS = "published"  # drafts, cancelled and completed events are never searchable


def _visible_types(open_only: bool) -> Any:
    """The event's public ticket types (not hidden, sales not over); ``open_only``: with room
    left under their own cap too."""
    now = func.now()
    conds = [
        TicketType.event_id == Event.id,
        TicketType.hidden.is_(False),
        or_(TicketType.sales_end.is_(None), TicketType.sales_end > now),
    ]
    if open_only:
        conds.append(
            or_(
                TicketType.capacity.is_(None),
                TicketType.capacity - TicketType.held - TicketType.sold > 0,
            )
        )
    return and_(*conds)


def _columns() -> Any:  # a Select of the document columns
    # the lowest price a buyer can still pay (visible types with seats left; else any visible
    # type still to be sold; else the event's), and whether any such type has seats
    open_price = select(func.min(TicketType.price)).where(_visible_types(True)).scalar_subquery()
    any_price = select(func.min(TicketType.price)).where(_visible_types(False)).scalar_subquery()
    return select(
        Event.id,
        Event.name,
        Event.description,
        Event.event_type,
        Event.status,
        Event.venue_id,
        Venue.name.label("venue_name"),
        Venue.city,
        Event.starts_at,
        Event.ends_at,
        func.coalesce(open_price, any_price, Event.price).label("price"),
        Event.currency,
        Event.available,
        open_price.label("open_price"),
    ).join(Venue, Venue.id == Event.venue_id)


def _document(row: Any) -> SearchDocument:
    return SearchDocument(
        event_id=row.id,
        name=row.name,
        description=row.description or "",
        event_type=row.event_type,
        venue_id=row.venue_id,
        venue_name=row.venue_name,
        city=row.city,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        price=row.price,
        currency=row.currency,
        has_seats=row.available > 0 and row.open_price is not None,
    )


async def load_document(session: AsyncSession, event_id: uuid.UUID) -> SearchDocument | None:
    """The event's document, or None when it must not be searchable (missing or unpublished)."""
    row = (await session.execute(_columns().where(Event.id == event_id))).one_or_none()
    if row is None or row.status != INDEXED_STATUS:
        return None
    return _document(row)


async def load_documents(
    session: AsyncSession, event_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, SearchDocument]:
    """Documents of those events that are searchable (absent ids: delete their documents)."""
    if not event_ids:
        return {}
    stmt = _columns().where(Event.id.in_(event_ids), Event.status == INDEXED_STATUS)
    return {row.id: _document(row) for row in (await session.execute(stmt)).all()}


async def count_indexable(session: AsyncSession) -> int:
    stmt = select(func.count()).select_from(Event).where(Event.status == INDEXED_STATUS)
    return int((await session.execute(stmt)).scalar_one())


async def iter_document_batches(
    sessionmaker: async_sessionmaker[AsyncSession], batch_size: int = 500
) -> AsyncIterator[list[SearchDocument]]:
    """Every searchable event, in id order, ``batch_size`` at a time (keyset pagination: each
    batch is one short read, so a long reindex never holds a transaction open)."""
    after: uuid.UUID | None = None
    while True:
        stmt = _columns().where(Event.status == INDEXED_STATUS).order_by(Event.id).limit(batch_size)
        if after is not None:
            stmt = stmt.where(Event.id > after)
        async with sessionmaker() as session:
            rows = (await session.execute(stmt)).all()
        if not rows:
            return
        yield [_document(r) for r in rows]
        after = rows[-1].id
        if len(rows) < batch_size:
            return


async def changed_event_ids(session: AsyncSession, since: datetime) -> list[uuid.UUID]:
    """Events touched since ``since`` (any status), for the catch-up pass after a reindex."""
    stmt = select(Event.id).where(Event.updated_at >= since)
    return list((await session.execute(stmt)).scalars())
