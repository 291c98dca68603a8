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
    from activities.booking import InventoryActivities, PaymentActivities
    from activities.events import EventActivities
    from activities.waitlist import WaitlistActivities
    from workflows.booking import BookingWorkflow
    from workflows.event_cancellation import EventCancellationWorkflow
    from workflows.search_sync import EventIndexSyncWorkflow
    from workflows.waitlist import WaitlistWorkflow

    def booking_activities(res: Resources) -> Sequence[Callable[..., Any]]:
        inv = InventoryActivities(res)  # local activities of BookingWorkflow
        return [
            inv.reserve_seats,
            inv.confirm_booking,
            inv.release_booking,
            inv.settle_late_payment,
            *EventActivities(res).all(),  # event cancellation
            *WaitlistActivities(res).all(),  # local activities of WaitlistWorkflow
        ]

    def payment_activities(res: Resources) -> Sequence[Callable[..., Any]]:
        pay = PaymentActivities(res)
        return [
            pay.charge_payment,
            pay.refund_payment,
            pay.record_provider_payment,
            pay.notify_user,
        ]

    def search_activities(res: Resources) -> Sequence[Callable[..., Any]]:
        from activities.search import SearchIndexActivities

        return [SearchIndexActivities.from_resources(res).index_event]

    specs: dict[str, QueueSpec] = {
        task_queues.BOOKING: QueueSpec(
            workflows=[
                BookingWorkflow,
                EventCancellationWorkflow,
                EventIndexSyncWorkflow,
                WaitlistWorkflow,
            ],
            activities=booking_activities,
        ),
        task_queues.SEARCH: QueueSpec(activities=search_activities),
        task_queues.PAYMENTS: QueueSpec(activities=payment_activities),
    }
    return specs
