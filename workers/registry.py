"""Which workflows and activities run on which task queue.

Each feature adds its workflow classes and activity classes here. An activity class gets its
clients (database, Redis, search, Temporal) in its constructor, ``cls(res, temporal)``, and
every method of it decorated with ``@activity.defn`` is registered. Production and the tests
build workers from this one table (workers/main.py: ``build_workers``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workflows import common


@dataclass
class QueueSpec:
    workflows: list[type] = field(default_factory=list)
    activity_classes: list[type] = field(default_factory=list)


def queue_specs() -> dict[str, QueueSpec]:
    """Imported lazily so `evently --help` stays fast."""
    from activities.admission import AdmissionActivities
    from activities.events import EventActivities
    from activities.inventory import InventoryActivities
    from activities.mail import MailActivities
    from activities.maintenance import MaintenanceActivities
    from activities.payments import PaymentActivities
    from activities.search import SearchIndexActivities
    from activities.waitlist import WaitlistActivities
    from activities.webhooks import WebhookActivities
    from workflows.admission.workflow import AdmissionWorkflow
    from workflows.booking.change_workflow import BookingChangeWorkflow
    from workflows.booking.workflow import BookingWorkflow
    from workflows.event_cancellation.workflow import EventCancellationWorkflow
    from workflows.mail.workflow import MailOutboxWorkflow
    from workflows.maintenance.workflow import MaintenanceWorkflow
    from workflows.search_sync.workflow import EventIndexSyncWorkflow
    from workflows.waitlist.workflow import WaitlistWorkflow
    from workflows.webhooks.workflow import WebhookDeliveryWorkflow, WebhookRelayWorkflow

    return {
        common.BOOKING: QueueSpec(
            workflows=[
                BookingWorkflow,
                BookingChangeWorkflow,
                EventCancellationWorkflow,
                EventIndexSyncWorkflow,
                WaitlistWorkflow,
                AdmissionWorkflow,
                MaintenanceWorkflow,  # the periodic jobs' Schedules (issue 33)
            ],
            # local activities of the booking, waitlist and admission workflows, event
            # cancellation
            activity_classes=[
                InventoryActivities,
                WaitlistActivities,
                EventActivities,
                AdmissionActivities,
                MaintenanceActivities,
            ],
        ),
        common.SEARCH: QueueSpec(activity_classes=[SearchIndexActivities]),
        common.PAYMENTS: QueueSpec(activity_classes=[PaymentActivities]),
        # the outbox dispatcher and its SMTP deliveries (workers/main.py starts the dispatcher)
        common.MAIL: QueueSpec(workflows=[MailOutboxWorkflow], activity_classes=[MailActivities]),
        # organizer webhooks: the outbox relay and the deliveries (slow receivers stay here)
        common.WEBHOOKS: QueueSpec(
            workflows=[WebhookRelayWorkflow, WebhookDeliveryWorkflow],
            activity_classes=[WebhookActivities],
        ),
    }
