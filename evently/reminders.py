"""The reminder mail a day before an event (issue 33), once per ticket.

A Temporal Schedule (workflows/maintenance/, ``evently-reminders``, hourly) runs
:func:`queue_due`: one notice per valid ticket of a confirmed booking of a published event that
starts within ``EVENTLY_REMINDER_HOURS_BEFORE`` hours, written to the mail outbox (the
notifications table) with the dedupe key ``event_reminder:<ticket id>`` — so a schedule that
fires twice, a retried activity or two overlapping runs write one notice per ticket, and the
outbox mails each once (evently/mail/outbox.py picks the address: the ticket's attendee, else
the buyer). A ticket issued by a transfer is a new ticket: its new attendee gets a reminder.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from evently.enums import NotificationKind

KIND = NotificationKind.EVENT_REMINDER

_QUEUE = text(
    """
INSERT INTO notifications (id, user_id, kind, dedupe_key, booking_id, payload)
SELECT gen_random_uuid(), b.user_id, CAST(:kind AS text), CAST(:kind AS text) || ':' || t.id,
       b.id, jsonb_build_object('ticket_id', t.id, 'event_id', e.id)
FROM events e
JOIN tickets t ON t.event_id = e.id AND t.status = 'valid' AND t.refund_change IS NULL
JOIN bookings b ON b.id = t.booking_id AND b.status = 'confirmed'
WHERE e.status = 'published'
  AND e.starts_at > now() AND e.starts_at <= now() + make_interval(hours => :hours)
ON CONFLICT (dedupe_key) DO NOTHING
"""
)


async def queue_due(conn: AsyncConnection, *, hours_before: int) -> int:
    """Write the reminders now due; returns how many were new (0 on a second run)."""
    result = await conn.execute(_QUEUE, {"kind": str(KIND), "hours": hours_before})
    return int(result.rowcount or 0)
