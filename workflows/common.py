"""What every workflow, activity registration and workflow client shares: task queues, the
search-attribute keys support staff filter on, and retry policies. Light: workflow code
imports it (no I/O, nothing from ``temporalio.client``)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.common import RetryPolicy, SearchAttributeKey, SearchAttributePair

# ---- task queues ------------------------------------------------------------------------------

BOOKING = "evently-booking"  # booking/waitlist/event workflows + inventory activities
SEARCH = "evently-search"  # search-index writes: a slow search cluster never holds up bookings
PAYMENTS = "evently-payments"  # payment provider calls
MAIL = (
    "evently-mail"  # the outbox dispatcher and SMTP deliveries: a slow mail server holds up nothing
)
WEBHOOKS = "evently-webhooks"  # organizer webhooks: a slow receiver never holds up anything else

QUEUES = {
    "booking": BOOKING,
    "search": SEARCH,
    "payments": PAYMENTS,
    "mail": MAIL,
    "webhooks": WEBHOOKS,
}

# ---- search attributes (registered at server start: evently/infra/embedded.py, compose) -----

EVENT_ID = SearchAttributeKey.for_keyword("EventId")
USER_ID = SearchAttributeKey.for_keyword("UserId")
BOOKING_STATUS = SearchAttributeKey.for_keyword("BookingStatus")
# the organization a workflow works for (support filters by organizer): set at start by each
# workflow's client, kept by continue-as-new
ORGANIZATION_ID = SearchAttributeKey.for_keyword("OrganizationId")

SEARCH_ATTRIBUTES = (EVENT_ID, USER_ID, BOOKING_STATUS, ORGANIZATION_ID)
# name -> type, as `temporal server start-dev --search-attribute` and the operator API take them
SEARCH_ATTRIBUTE_TYPES = {key.name: "Keyword" for key in SEARCH_ATTRIBUTES}


def organization_pairs(organization_id: uuid.UUID | None) -> list[SearchAttributePair[str]]:
    """The ``OrganizationId`` pair to start a workflow with (none when unknown)."""
    if organization_id is None:
        return []
    return [SearchAttributePair(ORGANIZATION_ID, str(organization_id))]


# ---- retry policies ---------------------------------------------------------------------------

# a short Postgres transaction: retry fast, never give up (the schedule-to-close bounds it)
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5)
)
# a call to another service (payment provider, search cluster): back off further
SERVICE_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10))
SLOW_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
