"""EventIndexSyncWorkflow's contract: input, signal and the activity it runs."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

WORKFLOW_NAME = "EventIndexSyncWorkflow"
SIGNAL_CHANGED = "changed"
ACTIVITY_INDEX_EVENT = "index_event"  # search task queue


def search_sync_workflow_id(event_id: uuid.UUID | str) -> str:
    return f"search-sync-{event_id}"


class IndexEventInput(BaseModel):
    event_id: uuid.UUID
