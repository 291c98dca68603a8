"""Data retention (issue 33): personal data of buyers and attendees that nothing needs any
more is removed ``EVENTLY_RETENTION_DAYS`` days after an event ends (a Temporal Schedule,
``evently-retention``, runs :func:`prune` daily; docs/temporal.md).

Removed, for bookings of events that ended before the cut-off:

- attendees and answers (``booking_attendees``: names, addresses, answers to the questions);
- the new attendee's name and address of transferred tickets (``ticket_transfers``; the
  audit entry of the transfer loses its ``to`` address);
- guest checkout's access keys (``booking_access_keys``: they open the booking);
- guest buyers: a guest row (no password, evently/booking_keys.py) whose every booking is of
  such an event is anonymised — name emptied, address ``removed-<id>@invalid``, inactive;
- the mail log (``notifications`` no longer pending, with their payloads and errors), once
  older than the cut-off whatever they were about.

Kept: bookings (amount, currency, discount, status, channel, times), payments and refunds,
tickets, the audit log's other entries — what accounting and disputes need. Accounts that
signed up keep their name and address (they are the account's, not the booking's). Expired
refresh, reset and verification tokens are deleted by the daily ``evently-prune-tokens``
schedule. Every statement is idempotent: a second run removes nothing more.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from evently.accounts import GUEST_PASSWORD_HASH

#: bookings of events that ended before the cut-off
_ENDED = """
SELECT b.id FROM bookings b JOIN events e ON e.id = b.event_id
WHERE e.ends_at < now() - make_interval(days => :days)
"""


@dataclass(frozen=True)
class Pruned:
    attendees: int = 0
    transfers: int = 0
    access_keys: int = 0
    guests: int = 0
    notifications: int = 0

    @property
    def total(self) -> int:
        return sum(asdict(self).values())


async def _run(conn: AsyncConnection, sql: str, days: int) -> int:
    result = await conn.execute(text(sql), {"days": days, "guest": GUEST_PASSWORD_HASH})
    return int(result.rowcount or 0)


async def prune(conn: AsyncConnection, *, days: int) -> Pruned:
    """One pass (run it in one transaction). ``days`` ≥ 0 after the event's end."""
    attendees = await _run(
        conn, f"DELETE FROM booking_attendees WHERE booking_id IN ({_ENDED})", days
    )
    await _run(
        conn,
        f"""UPDATE audit_log SET details = details - 'to'
            WHERE action = 'ticket.transferred' AND details->>'to' IS NOT NULL
              AND CAST(details->>'booking_id' AS uuid) IN ({_ENDED})""",
        days,
    )
    transfers = await _run(
        conn,
        f"""UPDATE ticket_transfers SET name = '', email = ''
            WHERE (name <> '' OR email <> '') AND booking_id IN ({_ENDED})""",
        days,
    )
    access_keys = await _run(
        conn, f"DELETE FROM booking_access_keys WHERE booking_id IN ({_ENDED})", days
    )
    guests = await _run(
        conn,
        """UPDATE users u SET email = 'removed-' || u.id || '@invalid', full_name = '',
                  is_active = false, email_verified_at = NULL
           WHERE u.password_hash = :guest AND right(u.email, 8) <> '@invalid'
             AND EXISTS (SELECT 1 FROM bookings b WHERE b.user_id = u.id)
             AND NOT EXISTS (
                 SELECT 1 FROM bookings b JOIN events e ON e.id = b.event_id
                 WHERE b.user_id = u.id
                   AND e.ends_at >= now() - make_interval(days => :days))""",
        days,
    )
    notifications = await _run(
        conn,
        """DELETE FROM notifications WHERE mail_status <> 'pending'
           AND created_at < now() - make_interval(days => :days)""",
        days,
    )
    return Pruned(attendees, transfers, access_keys, guests, notifications)
