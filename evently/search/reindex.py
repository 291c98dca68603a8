"""Rebuild the search index from Postgres, then catch up with changes made meanwhile."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from evently.search.base import ProgressCallback, SearchIndex
from evently.search.documents import (
    changed_event_ids,
    count_indexable,
    iter_document_batches,
    load_documents,
)

log = logging.getLogger("evently.search")
# updated_at is the writing transaction's start: one that began before the rebuild's first read
# may commit after it, so look back a little further than the start
CATCH_UP_SLACK = timedelta(seconds=5)


async def rebuild_index(
    sessionmaker: async_sessionmaker[AsyncSession],
    index: SearchIndex,
    *,
    batch_size: int = 500,
    on_total: Callable[[int], None] | None = None,
    on_batch: ProgressCallback | None = None,
) -> int:
    """Index every published event in batches; returns how many documents were written.

    Event changes committed while the rebuild runs are written by the ``index_event`` activity
    to the live index; an Elasticsearch rebuild builds a new index from earlier reads, so after
    the swap the events updated since the start are written once more.
    """
    async with sessionmaker() as session:
        started = (await session.execute(select(func.now()))).scalar_one()
        total = await count_indexable(session)
    if on_total is not None:
        on_total(total)
    written = await index.reindex(iter_document_batches(sessionmaker, batch_size), on_batch)
    async with sessionmaker() as session:
        changed = await changed_event_ids(session, started - CATCH_UP_SLACK)
    for i in range(0, len(changed), batch_size):
        ids = changed[i : i + batch_size]
        async with sessionmaker() as session:
            docs = await load_documents(session, ids)
        await index.upsert_many(list(docs.values()))
        for event_id in ids:
            if event_id not in docs:
                await index.delete(event_id)
    if changed:
        log.info("reindex caught up with %d events changed meanwhile", len(changed))
    return written
