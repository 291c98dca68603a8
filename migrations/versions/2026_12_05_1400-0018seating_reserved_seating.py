"""reserved seating: seating plans, an event's seats, the seats of each booking

Revision ID: 0018seating
Revises: 0017money
Create Date: 2026-12-05 14:00:00.000000

Issue 34. A venue's ``seating_plans`` with their ``plan_seats``; an event that names a plan
(``events.seating_plan_id``) gets a copy of its seats in ``event_seats``, where ``booking_id`` is
the one live booking holding the seat (NULL: free) and ``blocked`` the organizer's hold-back (a
CHECK forbids both). ``booking_seats`` is each booking's seat history (``released_at`` set when
it gave the seat back: a late payment takes the same seats again). A ticket type of a seated
event names the plan category it sells (``ticket_types.seat_category``).

Two triggers give a seat back in the very transaction that ends its booking, whichever
statement ends it (expiry, cancellation, refund, event cancellation): a booking leaving
held/confirmed frees its seats; a partial cancellation (``booking_lines.cancelled`` growing)
frees that many seats of the line's type, highest seat id first.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018seating"
down_revision: str | None = "0017money"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEAT_COLUMNS = (
    ("seat_id", sa.Text()),
    ("section", sa.Text()),
    ("row", sa.Text()),
    ("label", sa.Text()),
    ("x", sa.Float()),
    ("y", sa.Float()),
    ("category", sa.Text()),
)


def _seat_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    cols: list[sa.Column] = [sa.Column(n, t, nullable=False) for n, t in _SEAT_COLUMNS]  # type: ignore[type-arg]
    cols += [
        sa.Column("flags", postgresql.ARRAY(sa.Text()), nullable=False, server_default="{}"),
        # best-available's order: the section's and the row's rank, the seat's place in its row
        sa.Column("section_rank", sa.Integer(), nullable=False),
        sa.Column("row_rank", sa.Integer(), nullable=False),
        sa.Column("pos", sa.Integer(), nullable=False),
    ]
    return cols


def upgrade() -> None:
    op.create_table(
        "seating_plans",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("organization_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("venue_id", sa.Uuid(), sa.ForeignKey("venues.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("seats > 0", name="ck_seating_plans_seats_positive"),
    )
    op.create_index("ix_seating_plans_venue_id", "seating_plans", ["venue_id"])
    op.create_table(
        "plan_seats",
        sa.Column(
            "plan_id",
            sa.Uuid(),
            sa.ForeignKey("seating_plans.id", ondelete="CASCADE"),
            nullable=False,
        ),
        *_seat_columns(),
        sa.PrimaryKeyConstraint("plan_id", "seat_id", name="pk_plan_seats"),
    )
    op.add_column(
        "events",
        sa.Column("seating_plan_id", sa.Uuid(), sa.ForeignKey("seating_plans.id"), nullable=True),
    )
    op.add_column("ticket_types", sa.Column("seat_category", sa.Text(), nullable=True))
    op.create_table(
        "event_seats",
        sa.Column("event_id", sa.Uuid(), sa.ForeignKey("events.id"), nullable=False),
        *_seat_columns(),
        sa.Column("blocked", sa.Boolean(), nullable=False, server_default=sa.false()),
        # deferred: a reserve takes the seats before it inserts the booking (same transaction)
        sa.Column(
            "booking_id",
            sa.Uuid(),
            sa.ForeignKey("bookings.id", deferrable=True, initially="DEFERRED"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("event_id", "seat_id", name="pk_event_seats"),
        sa.CheckConstraint(
            "NOT (blocked AND booking_id IS NOT NULL)", name="ck_event_seats_blocked_or_booked"
        ),
    )
    op.create_index(
        "ix_event_seats_booking_id",
        "event_seats",
        ["booking_id"],
        postgresql_where=sa.text("booking_id IS NOT NULL"),
    )
    op.create_index(
        "ix_event_seats_best",
        "event_seats",
        ["event_id", "category", "section_rank", "row_rank", "pos"],
    )
    op.create_table(
        "booking_seats",
        sa.Column("booking_id", sa.Uuid(), sa.ForeignKey("bookings.id"), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("seat_id", sa.Text(), nullable=False),
        sa.Column("ticket_type_id", sa.Uuid(), sa.ForeignKey("ticket_types.id"), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("booking_id", "seat_id", name="pk_booking_seats"),
        sa.ForeignKeyConstraint(
            ["event_id", "seat_id"],
            ["event_seats.event_id", "event_seats.seat_id"],
            name="fk_booking_seats_event_seats",
        ),
    )
    op.execute(
        """
CREATE FUNCTION evently_free_booking_seats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE event_seats SET booking_id = NULL
    WHERE event_id = NEW.event_id AND booking_id = NEW.id;
    UPDATE booking_seats SET released_at = now()
    WHERE booking_id = NEW.id AND released_at IS NULL;
    RETURN NULL;
END $$;
"""
    )
    op.execute(
        """
CREATE TRIGGER bookings_free_seats AFTER UPDATE OF status ON bookings
FOR EACH ROW WHEN (OLD.status IN ('held', 'confirmed')
                   AND NEW.status NOT IN ('held', 'confirmed'))
EXECUTE FUNCTION evently_free_booking_seats();
"""
    )
    op.execute(
        """

CREATE FUNCTION evently_free_line_seats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH pick AS (
        UPDATE booking_seats s SET released_at = now()
        WHERE (s.booking_id, s.seat_id) IN (
            SELECT x.booking_id, x.seat_id FROM booking_seats x
            WHERE x.booking_id = NEW.booking_id AND x.ticket_type_id = NEW.ticket_type_id
              AND x.released_at IS NULL
            ORDER BY x.seat_id DESC LIMIT NEW.cancelled - OLD.cancelled)
        RETURNING s.event_id, s.seat_id
    )
    UPDATE event_seats e SET booking_id = NULL FROM pick
    WHERE e.event_id = pick.event_id AND e.seat_id = pick.seat_id
      AND e.booking_id = NEW.booking_id;
    RETURN NULL;
END $$;
"""
    )
    op.execute(
        """
CREATE TRIGGER booking_lines_free_seats AFTER UPDATE OF cancelled ON booking_lines
FOR EACH ROW WHEN (NEW.cancelled > OLD.cancelled)
EXECUTE FUNCTION evently_free_line_seats();
"""
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS booking_lines_free_seats ON booking_lines")
    op.execute("DROP TRIGGER IF EXISTS bookings_free_seats ON bookings")
    op.execute("DROP FUNCTION IF EXISTS evently_free_line_seats()")
    op.execute("DROP FUNCTION IF EXISTS evently_free_booking_seats()")
    op.drop_table("booking_seats")
    op.drop_index("ix_event_seats_best", table_name="event_seats")
    op.drop_index("ix_event_seats_booking_id", table_name="event_seats")
    op.drop_table("event_seats")
    op.drop_column("ticket_types", "seat_category")
    op.drop_column("events", "seating_plan_id")
    op.drop_table("plan_seats")
    op.drop_index("ix_seating_plans_venue_id", table_name="seating_plans")
    op.drop_table("seating_plans")
