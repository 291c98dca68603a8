"""Search-index writes: read the event from Postgres, write (or remove) its document.

Runs on the SEARCH task queue, so a slow or down search cluster never holds up bookings;
Temporal retries until the write lands. Idempotent: the document is keyed by event id and always
rebuilt from the current row, so a retried or repeated run converges on the same index state.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel
from temporalio import activity

from evently.infra.resources import Resources
from evently.search.documents import load_document
from workflows.connection import TemporalClient
from workflows.search_sync.contract import ACTIVITY_INDEX_EVENT, IndexEventInput


class IndexEventResult(BaseModel):
    event_id: uuid.UUID
    action: Literal["upserted", "deleted"]


class SearchIndexActivities:
    def __init__(self, res: Resources, temporal: TemporalClient | None = None) -> None:
        self.sessionmaker = res.sessionmaker
        self.index = res.search

    @activity.defn(name=ACTIVITY_INDEX_EVENT)
    async def index_event(self, data: IndexEventInput) -> IndexEventResult:
        """Upsert a published event's document; delete it for any other state (or no event)."""
        async with self.sessionmaker() as session:
            doc = await load_document(session, data.event_id)
        if doc is None:
            await self.index.delete(data.event_id)
            return IndexEventResult(event_id=data.event_id, action="deleted")
        await self.index.upsert(doc)
        return IndexEventResult(event_id=data.event_id, action="upserted")
