"""Which workflows and activities run on which task queue.

Each feature adds its workflows and activity classes here; the activity classes get their
clients (database, Redis, Temporal, search) from `Resources` in their constructor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from evently import task_queues
from evently.resources import Resources


@dataclass
class QueueSpec:
    workflows: list[type] = field(default_factory=list)
    activities: Callable[[Resources], Sequence[Callable[..., Any]]] = lambda res: []


def queue_specs() -> dict[str, QueueSpec]:
    """Imported lazily so `evently --help` stays fast."""
    from workflows.search_sync import EventIndexSyncWorkflow

    specs: dict[str, QueueSpec] = {
        task_queues.BOOKING: QueueSpec(workflows=[EventIndexSyncWorkflow]),
        task_queues.SEARCH: QueueSpec(),
        task_queues.PAYMENTS: QueueSpec(),
    }
    return specs
