"""Keeps the search index in step with an event: one workflow per event, signal-with-start.

Every change to an event (or an availability flip) signals ``changed``; the workflow runs the
``index_event`` activity on the search task queue until no change is pending, with Temporal
retrying a slow or down search backend forever. It never blocks the booking path.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows import common
    from workflows.search_sync.contract import (
        ACTIVITY_INDEX_EVENT,
        SIGNAL_CHANGED,
        WORKFLOW_NAME,
        IndexEventInput,
    )


@workflow.defn(name=WORKFLOW_NAME)
class EventIndexSyncWorkflow:
    def __init__(self) -> None:
        self._dirty = True

    @workflow.signal(name=SIGNAL_CHANGED)
    def changed(self) -> None:
        self._dirty = True

    @workflow.run
    async def run(self, data: IndexEventInput) -> None:
        while self._dirty:
            self._dirty = False
            await workflow.execute_activity(
                ACTIVITY_INDEX_EVENT,
                data,
                task_queue=common.SEARCH,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=common.SLOW_RETRY,
            )
        # let handlers finish before completing; a late signal restarts the loop server-side
        await workflow.wait_condition(workflow.all_handlers_finished)
