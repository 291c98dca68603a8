"""seat labels: each ticket of a seated booking carries its reserved seat

Revision ID: 0019seatlabels
Revises: 0018seating
Create Date: 2026-12-05 21:15:00.000000

Issue 34. ``tickets.seat_id`` names the event seat a ticket admits to (NULL: general
admission, the serial ``seat`` is all there is). It is set when the tickets are issued at
confirmation (the booking's seats of each type in plan order, evently/inventory/seats.py) and
copied by a transfer. At most one valid ticket per seat (partial unique index).

The partial-cancellation trigger of 0018 freed "that many seats of the type, highest seat id
first", while the cancellation revokes tickets by its own order (promised to the refund, not
yet scanned, highest serial): the seat freed could be the one a remaining ticket sits on. It
now frees the booking's seats of that type that no valid ticket carries any more — after the
revocation in the same statement, exactly the revoked tickets' seats (AFTER triggers fire at
the end of the statement) — highest seat id first only among those (and for tickets issued
before this migration, which carry no seat).

Existing valid tickets of seated bookings get their seats: per booking and type, the k-th
ticket by serial ↔ the k-th held seat in plan order.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019seatlabels"
down_revision: str | None = "0018seating"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FREE_LINE_SEATS = """
CREATE OR REPLACE FUNCTION evently_free_line_seats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH pick AS (
        UPDATE booking_seats s SET released_at = now()
        WHERE (s.booking_id, s.seat_id) IN (
            SELECT x.booking_id, x.seat_id FROM booking_seats x
            WHERE x.booking_id = NEW.booking_id AND x.ticket_type_id = NEW.ticket_type_id
              AND x.released_at IS NULL
            ORDER BY {order} LIMIT NEW.cancelled - OLD.cancelled)
        RETURNING s.event_id, s.seat_id
    )
    UPDATE event_seats e SET booking_id = NULL FROM pick
    WHERE e.event_id = pick.event_id AND e.seat_id = pick.seat_id
      AND e.booking_id = NEW.booking_id;
    RETURN NULL;
END $$;
"""

# seats no valid ticket of the booking carries come first
_TICKETED_LAST = (
    "EXISTS (SELECT 1 FROM tickets t WHERE t.booking_id = x.booking_id "
    "AND t.seat_id = x.seat_id AND t.status = 'valid'), x.seat_id DESC"
)


def upgrade() -> None:
    op.add_column("tickets", sa.Column("seat_id", sa.Text(), nullable=True))
    op.create_foreign_key(
        "fk_tickets_event_seats",
        "tickets",
        "event_seats",
        ["event_id", "seat_id"],
        ["event_id", "seat_id"],
    )
    op.create_index(
        "uq_tickets_valid_seat",
        "tickets",
        ["event_id", "seat_id"],
        unique=True,
        postgresql_where=sa.text("seat_id IS NOT NULL AND status = 'valid'"),
    )
    op.execute(
        """
WITH t AS (
    SELECT k.id, k.booking_id, k.ticket_type_id,
           row_number() OVER (PARTITION BY k.booking_id, k.ticket_type_id ORDER BY k.seat) AS n
    FROM tickets k
    WHERE k.status = 'valid' AND EXISTS (SELECT 1 FROM booking_seats x
                                         WHERE x.booking_id = k.booking_id)
), s AS (
    SELECT x.booking_id, x.ticket_type_id, x.seat_id,
           row_number() OVER (PARTITION BY x.booking_id, x.ticket_type_id
                              ORDER BY e.section_rank, e.row_rank, e.pos) AS n
    FROM booking_seats x
    JOIN event_seats e ON e.event_id = x.event_id AND e.seat_id = x.seat_id
    WHERE x.released_at IS NULL
)
UPDATE tickets k SET seat_id = s.seat_id FROM t, s
WHERE k.id = t.id AND s.booking_id = t.booking_id AND s.ticket_type_id = t.ticket_type_id
  AND s.n = t.n
"""
    )
    op.execute(_FREE_LINE_SEATS.format(order=_TICKETED_LAST))


def downgrade() -> None:
    op.execute(_FREE_LINE_SEATS.format(order="x.seat_id DESC"))
    op.drop_index("uq_tickets_valid_seat", table_name="tickets")
    op.drop_constraint("fk_tickets_event_seats", "tickets", type_="foreignkey")
    op.drop_column("tickets", "seat_id")
