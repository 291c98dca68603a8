"""The door: redeem a scanned ticket once, and count what happened.

One scan is ONE statement (:data:`_REDEEM`) on an autocommit connection:

- the ticket row is updated unconditionally, so every scan of a ticket takes its row lock in
  turn; the SET admits (``checked_in_at``/``_device``/``_nonce``) only when the row, as the
  lock holder sees it after the previous scan committed, is valid and not yet admitted. Of 20
  concurrent scans exactly one admits, and the 19 others read who did from the same row;
- the scan is recorded under its nonce (``checkin_scans``) with the answer it got; a nonce
  seen before skips the update and returns that stored answer, so a device that retries over a
  flaky network gets the same answer (``admitted`` stays ``admitted``);
- it is keyed by the ticket id from the verified secret, never by the secret's text (a
  lower-cased copy of a secret verifies as well and is the same ticket).

Offline devices upload their scans later with ``scanned_at``: such a scan is admitted if the
ticket is still unadmitted (with its own time as ``checked_in_at``); otherwise it is a
*conflict* (the device let someone in whom the server refused): answered 409, recorded with
``conflict = true`` and counted for the organizer. The first scan to reach the server wins;
an answer already given is never rewritten.

Only the door of the ticket's own organization admits it (issue 30): the statement finds the
scanner's membership from the ticket's event, and a scanner who is not a ``door``, ``owner``
or ``manager`` member there gets no row at all — the same answer as an unknown ticket.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from evently.enums import CheckinResult
from evently.tickets import store

# ``a``: the scan's typed arguments; admit only a valid, unadmitted ticket of the right event
# (and one not promised to an accepted refund: ``refund_change``, evently/booking_changes.py)
_ADMIT = (
    "t.status = 'valid' AND t.checked_in_at IS NULL AND t.refund_change IS NULL "
    "AND t.event_id = COALESCE(a.event, t.event_id)"
)

_REDEEM = text(
    f"""
WITH a AS (
    SELECT CAST(:nonce AS text) AS nonce, CAST(:device_id AS text) AS device,
           CAST(:user_id AS uuid) AS door_user, CAST(:event_id AS uuid) AS event,
           COALESCE(CAST(:scanned_at AS timestamptz), now()) AS scanned_at,
           CAST(:offline AS boolean) AS offline,
           -- who may admit it: a door/owner/manager member of the ticket's event's
           -- organization (from the ticket, never from the request), or the platform admin
           CAST(:admin AS boolean) OR EXISTS (
               SELECT 1 FROM tickets tk
               JOIN events e ON e.id = tk.event_id
               JOIN organization_members m ON m.organization_id = e.organization_id
               WHERE tk.id = :ticket_id AND m.user_id = CAST(:user_id AS uuid)
                 AND m.role = ANY(CAST(:door_roles AS text[]))
           ) AS allowed
), prior AS (
    SELECT s.ticket_id, s.device_id, s.result, s.conflict, s.checked_in_at, s.checked_in_device
    FROM checkin_scans s, a WHERE s.nonce = a.nonce AND a.allowed
), t AS (
    UPDATE tickets t SET
        checked_in_at = CASE WHEN {_ADMIT} THEN a.scanned_at ELSE t.checked_in_at END,
        checked_in_device = CASE WHEN {_ADMIT} THEN a.device ELSE t.checked_in_device END,
        checkin_nonce = CASE WHEN {_ADMIT} THEN a.nonce ELSE t.checkin_nonce END
    FROM a
    WHERE t.id = :ticket_id AND a.allowed AND NOT EXISTS (SELECT 1 FROM prior)
    RETURNING t.id, t.event_id, t.checked_in_at, t.checked_in_device, a.offline,
        CASE WHEN t.checkin_nonce = a.nonce THEN 'admitted'
             WHEN t.event_id <> COALESCE(a.event, t.event_id) THEN 'wrong_event'
             WHEN t.status = 'revoked' OR t.refund_change IS NOT NULL THEN 'ticket_revoked'
             ELSE 'already_checked_in' END AS result
), scan AS (
    INSERT INTO checkin_scans (nonce, ticket_id, event_id, device_id, scanned_by, scanned_at,
                               offline, result, conflict, checked_in_at, checked_in_device)
    SELECT a.nonce, t.id, t.event_id, a.device, a.door_user, a.scanned_at, a.offline, t.result,
           a.offline AND t.result <> 'admitted', t.checked_in_at, t.checked_in_device
    FROM t, a ON CONFLICT (nonce) DO NOTHING
)
SELECT r.*, tk.event_id, tk.booking_id, tk.seat,
       tk.seat_id, es.section, es.row, es.label AS seat_label,
       COALESCE(NULLIF(u.full_name, ''), u.email) AS holder_name
FROM (
    SELECT t.id AS ticket_id, CAST(:device_id AS text) AS device_id, t.result,
           t.offline AND t.result <> 'admitted' AS conflict,
           t.checked_in_at, t.checked_in_device, false AS replay
    FROM t
    UNION ALL
    SELECT p.ticket_id, p.device_id, p.result, p.conflict, p.checked_in_at,
           p.checked_in_device, true AS replay
    FROM prior p
) r
JOIN tickets tk ON tk.id = r.ticket_id  -- id, event, booking and seat never change
LEFT JOIN event_seats es ON es.event_id = tk.event_id AND es.seat_id = tk.seat_id
JOIN bookings b ON b.id = tk.booking_id
JOIN users u ON u.id = b.user_id
"""
)


@dataclass(frozen=True)
class Scan:
    """The answer to one scan (the same for every replay of its nonce)."""

    ticket_id: uuid.UUID
    event_id: uuid.UUID
    booking_id: uuid.UUID
    seat: int
    #: the reserved seat (issue 34); None: general admission
    place: store.Place | None
    holder_name: str
    device_id: str
    result: CheckinResult
    #: an offline device's scan that the server refused: that device admitted someone anyway
    conflict: bool
    #: the ticket's admission as this scan found it (for a refusal: the winning scan's)
    checked_in_at: datetime | None
    checked_in_device: str | None
    #: this nonce had been answered before: this is that answer
    replay: bool


async def redeem(
    conn: AsyncConnection,
    *,
    ticket_id: uuid.UUID,
    nonce: str,
    device_id: str,
    user_id: uuid.UUID | None,
    scanned_at: datetime | None,
    event_id: uuid.UUID | None = None,
    admin: bool = False,
    door_roles: Sequence[str],
) -> Scan | None:
    """Redeem a verified ticket (on an autocommit connection: the statement is the
    transaction). ``scanned_at`` set means an offline device's upload. None: no such ticket,
    or the scanner does not work the door of its organization (one of ``door_roles`` there —
    the service passes ``evently.organizations.DOOR_ROLES``; the platform admin, ``admin``,
    everywhere) — the two are not told apart.
    A replayed nonce answers for the ticket it was first used with: the caller checks that
    it is this ticket (``nonce_reused`` otherwise)."""
    row = (
        await conn.execute(
            _REDEEM,
            {
                "ticket_id": ticket_id,
                "nonce": nonce,
                "device_id": device_id,
                "user_id": user_id,
                "scanned_at": scanned_at,
                "offline": scanned_at is not None,
                "event_id": event_id,
                "admin": admin,
                "door_roles": [str(r) for r in door_roles],
            },
        )
    ).first()
    if row is None:
        return None
    # the ticket's attendee (issue 32: a name given for its seat, or the name it was transferred
    # to) rather than the buyer; the door is told the name only, never the answers
    attendee = (await store.attendee_names(conn, row.booking_id)).get(row.ticket_id)
    return Scan(
        ticket_id=row.ticket_id,
        event_id=row.event_id,
        booking_id=row.booking_id,
        seat=row.seat,
        place=store.place_of(row.seat_id, row.section, row.row, row.seat_label),
        holder_name=attendee or row.holder_name,
        device_id=row.device_id,
        result=CheckinResult(row.result),
        conflict=bool(row.conflict),
        checked_in_at=row.checked_in_at,
        checked_in_device=row.checked_in_device,
        replay=bool(row.replay),
    )


# ---- the organizer's view ---------------------------------------------------------------------


@dataclass(frozen=True)
class ScanRow:
    ticket_id: uuid.UUID
    seat: int
    booking_id: uuid.UUID
    device_id: str
    result: CheckinResult
    offline: bool
    conflict: bool
    scanned_at: datetime
    received_at: datetime
    checked_in_at: datetime | None
    checked_in_device: str | None


@dataclass(frozen=True)
class CheckinStats:
    issued: int
    valid: int
    revoked: int
    checked_in: int
    not_checked_in: int
    scans: dict[str, int]
    offline_scans: int
    conflicts: int
    latest: list[ScanRow]
    latest_conflicts: list[ScanRow]


_TICKET_COUNTS = text(
    """
SELECT count(*) AS issued,
       count(*) FILTER (WHERE status = 'valid') AS valid,
       count(*) FILTER (WHERE status = 'revoked') AS revoked,
       count(*) FILTER (WHERE checked_in_at IS NOT NULL) AS checked_in,
       count(*) FILTER (WHERE status = 'valid' AND checked_in_at IS NULL) AS not_checked_in
FROM tickets WHERE event_id = :e
"""
)

_SCAN_COUNTS = text(
    """
SELECT result, count(*) AS n, count(*) FILTER (WHERE offline) AS offline,
       count(*) FILTER (WHERE conflict) AS conflicts
FROM checkin_scans WHERE event_id = :e GROUP BY result
"""
)

_LATEST = """
SELECT s.ticket_id, t.seat, t.booking_id, s.device_id, s.result, s.offline, s.conflict,
       s.scanned_at, s.received_at, s.checked_in_at, s.checked_in_device
FROM checkin_scans s JOIN tickets t ON t.id = s.ticket_id
WHERE s.event_id = :e {extra}
ORDER BY s.received_at DESC, s.nonce DESC LIMIT :limit
"""


def _scan_row(r: Any) -> ScanRow:
    return ScanRow(
        ticket_id=r.ticket_id,
        seat=r.seat,
        booking_id=r.booking_id,
        device_id=r.device_id,
        result=CheckinResult(r.result),
        offline=r.offline,
        conflict=r.conflict,
        scanned_at=r.scanned_at,
        received_at=r.received_at,
        checked_in_at=r.checked_in_at,
        checked_in_device=r.checked_in_device,
    )


async def stats(conn: Any, event_id: uuid.UUID, *, limit: int) -> CheckinStats:
    """Counts of the event's tickets and scans, the latest scans and the latest conflicts.
    Every query is keyed by the event and served by an index starting with it."""
    t = (await conn.execute(_TICKET_COUNTS, {"e": event_id})).one()
    scans = {r.value: 0 for r in CheckinResult}
    offline = conflicts = 0
    for r in await conn.execute(_SCAN_COUNTS, {"e": event_id}):
        scans[r.result] = int(r.n)
        offline += int(r.offline)
        conflicts += int(r.conflicts)
    latest = await conn.execute(text(_LATEST.format(extra="")), {"e": event_id, "limit": limit})
    latest_conflicts = await conn.execute(
        text(_LATEST.format(extra="AND s.conflict")), {"e": event_id, "limit": limit}
    )
    return CheckinStats(
        issued=int(t.issued),
        valid=int(t.valid),
        revoked=int(t.revoked),
        checked_in=int(t.checked_in),
        not_checked_in=int(t.not_checked_in),
        scans=scans,
        offline_scans=offline,
        conflicts=conflicts,
        latest=[_scan_row(r) for r in latest],
        latest_conflicts=[_scan_row(r) for r in latest_conflicts],
    )


# ---- what an offline door keeps ----------------------------------------------------------------


@dataclass(frozen=True)
class Admission:
    ticket_id: uuid.UUID
    checked_in_at: datetime
    checked_in_device: str | None


@dataclass(frozen=True)
class DoorList:
    """The tickets of an event a door must refuse without asking: revoked ones, and those
    already admitted (with when and where, for the refusal's wording)."""

    revoked: list[uuid.UUID]
    checked_in: list[Admission]


_DOOR_LIST = text(
    """
SELECT id, status, checked_in_at, checked_in_device FROM tickets
WHERE event_id = :e AND (status = 'revoked' OR checked_in_at IS NOT NULL)
ORDER BY id
"""
)


async def door_list(conn: Any, event_id: uuid.UUID) -> DoorList:
    revoked: list[uuid.UUID] = []
    admitted: list[Admission] = []
    for r in await conn.execute(_DOOR_LIST, {"e": event_id}):
        if r.status == "revoked":
            revoked.append(r.id)
        elif r.checked_in_at is not None:
            admitted.append(Admission(r.id, r.checked_in_at, r.checked_in_device))
    return DoorList(revoked=revoked, checked_in=admitted)
