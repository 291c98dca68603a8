"""ticket types, booking lines and promo codes

Revision ID: 0008tickettypes
Revises: 0007queue
Create Date: 2026-11-30 09:00:00.000000

- ``ticket_types``: what an event sells (name, price, an optional cap of its own, a sales
  window, hidden, a per-booking maximum) with its own ``held``/``sold`` counters. The event's
  ``capacity`` stays the shared quota; ``CHECK (held + sold <= capacity)`` makes a type's cap
  a hard limit. Every event has exactly one default type (``is_default``): the trigger below
  creates it when an event row is inserted (whoever inserts it: the API, the seed, the
  benchmarks), and keeps its price and currency equal to the event's ``price``/``currency``
  (clients that only know ``{event_id, quantity}`` keep buying it). Existing events get
  theirs here, with counters from their bookings.
- ``booking_lines``: one per (booking, type): quantity, unit price and discount frozen at hold
  time, and how many seats of it were cancelled later (partial cancellation). Existing
  bookings get one line on their event's default type.
- ``promo_codes`` with ``uses`` counted in the reserve statement (``CHECK uses <= max_uses``);
  ``bookings.promo_code_id`` / ``discount``; ``tickets.ticket_type_id``.
- ``booking_changes``: one row per partial cancellation of a confirmed booking, numbered per
  booking (the BookingChangeWorkflow id and the refund's idempotency key carry the number), with
  its lines, its refund amount and how far it got; ``payments.kind`` may be ``partial_refund``.
- ``evently_refuse(reason)``: raises SQLSTATE ``EV001``; a reserve statement calls it when a
  line could not be taken after the event's seats were, so the whole statement (booking row,
  every counter) rolls back: all lines or none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008tickettypes"
down_revision: str | None = "0007queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


FUNCTIONS = r"""
CREATE FUNCTION evently_refuse(reason text) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'EV001', MESSAGE = reason;
END $$;

CREATE FUNCTION evently_default_ticket_type() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ticket_types (id, event_id, name, price, currency, is_default, position)
    VALUES (gen_random_uuid(), NEW.id, 'General admission', NEW.price, NEW.currency, true, 0);
    RETURN NULL;
END $$;

CREATE FUNCTION evently_event_price_to_types() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ticket_types SET price = NEW.price, updated_at = now()
    WHERE event_id = NEW.id AND is_default AND price <> NEW.price;
    UPDATE ticket_types SET currency = NEW.currency, updated_at = now()
    WHERE event_id = NEW.id AND currency <> NEW.currency;
    RETURN NULL;
END $$;

CREATE TRIGGER default_ticket_type AFTER INSERT ON events FOR EACH ROW
    EXECUTE FUNCTION evently_default_ticket_type();

CREATE TRIGGER event_price_to_types AFTER UPDATE OF price, currency ON events FOR EACH ROW
    WHEN (OLD.price IS DISTINCT FROM NEW.price OR OLD.currency IS DISTINCT FROM NEW.currency)
    EXECUTE FUNCTION evently_event_price_to_types();
"""

DROP_FUNCTIONS = """
DROP TRIGGER IF EXISTS event_price_to_types ON events;
DROP TRIGGER IF EXISTS default_ticket_type ON events;
DROP FUNCTION IF EXISTS evently_event_price_to_types();
DROP FUNCTION IF EXISTS evently_default_ticket_type();
DROP FUNCTION IF EXISTS evently_refuse(text);
"""


def _statements(script: str) -> list[str]:
    """One statement at a time (asyncpg runs one per call): separated by blank lines here."""
    return [part.strip() for part in script.split("\n\n") if part.strip()]


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _created() -> sa.Column[object]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def _updated() -> sa.Column[object]:
    return sa.Column(
        "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "ticket_types",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("held", sa.Integer(), server_default="0", nullable=False),
        sa.Column("sold", sa.Integer(), server_default="0", nullable=False),
        _ts("sales_start"),
        _ts("sales_end"),
        sa.Column("hidden", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("max_per_booking", sa.Integer(), nullable=True),
        sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        _created(),
        _updated(),
        sa.CheckConstraint("price >= 0", name=op.f("ck_ticket_types_price_nonnegative")),
        sa.CheckConstraint("held >= 0", name=op.f("ck_ticket_types_held_nonnegative")),
        sa.CheckConstraint("sold >= 0", name=op.f("ck_ticket_types_sold_nonnegative")),
        sa.CheckConstraint(
            "capacity IS NULL OR (capacity > 0 AND held + sold <= capacity)",
            name=op.f("ck_ticket_types_within_cap"),
        ),
        sa.CheckConstraint(
            "max_per_booking IS NULL OR max_per_booking > 0",
            name=op.f("ck_ticket_types_max_per_booking_positive"),
        ),
        sa.CheckConstraint(
            "sales_start IS NULL OR sales_end IS NULL OR sales_end > sales_start",
            name=op.f("ck_ticket_types_sales_window"),
        ),
        sa.CheckConstraint(
            "NOT is_default OR capacity IS NULL", name=op.f("ck_ticket_types_default_uncapped")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_ticket_types_event_id_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_types")),
    )
    op.create_index(
        "ix_ticket_types_event_position", "ticket_types", ["event_id", "position", "created_at"]
    )
    op.create_index(
        "uq_ticket_types_event_default",
        "ticket_types",
        ["event_id"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )

    op.create_table(
        "promo_codes",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("percent_off", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("amount_off", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), server_default="0", nullable=False),
        _ts("valid_from"),
        _ts("valid_until"),
        sa.Column("ticket_type_ids", postgresql.ARRAY(sa.UUID()), nullable=True),
        sa.Column("unlocks_hidden", sa.Boolean(), server_default=sa.false(), nullable=False),
        _created(),
        sa.CheckConstraint(
            "(percent_off IS NULL) <> (amount_off IS NULL)", name=op.f("ck_promo_codes_one_kind")
        ),
        sa.CheckConstraint(
            "percent_off IS NULL OR (percent_off > 0 AND percent_off <= 100)",
            name=op.f("ck_promo_codes_percent_range"),
        ),
        sa.CheckConstraint(
            "amount_off IS NULL OR amount_off > 0", name=op.f("ck_promo_codes_amount_positive")
        ),
        sa.CheckConstraint("max_uses > 0", name=op.f("ck_promo_codes_max_uses_positive")),
        sa.CheckConstraint("uses BETWEEN 0 AND max_uses", name=op.f("ck_promo_codes_uses_range")),
        sa.CheckConstraint(
            "valid_from IS NULL OR valid_until IS NULL OR valid_until > valid_from",
            name=op.f("ck_promo_codes_valid_window"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_promo_codes_event_id_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promo_codes")),
        sa.UniqueConstraint("event_id", "code", name=op.f("uq_promo_codes_event_code")),
    )

    op.add_column("bookings", sa.Column("promo_code_id", sa.UUID(), nullable=True))
    op.create_foreign_key(
        op.f("fk_bookings_promo_code_id_promo_codes"),
        "bookings",
        "promo_codes",
        ["promo_code_id"],
        ["id"],
    )
    op.create_index(
        "ix_bookings_promo_code",
        "bookings",
        ["promo_code_id"],
        postgresql_where=sa.text("promo_code_id IS NOT NULL"),
    )
    op.add_column(
        "bookings",
        sa.Column(
            "discount", sa.Numeric(precision=12, scale=2), server_default="0", nullable=False
        ),
    )

    op.create_table(
        "booking_lines",
        sa.Column("booking_id", sa.UUID(), nullable=False),
        sa.Column("ticket_type_id", sa.UUID(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column(
            "discount", sa.Numeric(precision=12, scale=2), server_default="0", nullable=False
        ),
        sa.Column("cancelled", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_booking_lines_quantity_positive")),
        sa.CheckConstraint(
            "cancelled BETWEEN 0 AND quantity", name=op.f("ck_booking_lines_cancelled_range")
        ),
        sa.CheckConstraint("discount >= 0", name=op.f("ck_booking_lines_discount_nonnegative")),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["bookings.id"], name=op.f("fk_booking_lines_booking_id_bookings")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_type_id"],
            ["ticket_types.id"],
            name=op.f("fk_booking_lines_ticket_type_id_ticket_types"),
        ),
        sa.PrimaryKeyConstraint("booking_id", "ticket_type_id", name=op.f("pk_booking_lines")),
    )
    op.create_index("ix_booking_lines_ticket_type", "booking_lines", ["ticket_type_id"])

    op.add_column("tickets", sa.Column("ticket_type_id", sa.UUID(), nullable=True))
    op.create_foreign_key(
        op.f("fk_tickets_ticket_type_id_ticket_types"),
        "tickets",
        "ticket_types",
        ["ticket_type_id"],
        ["id"],
    )

    op.create_table(
        "booking_changes",
        sa.Column("booking_id", sa.UUID(), nullable=False),
        sa.Column("change_no", sa.Integer(), nullable=False),
        sa.Column("lines", postgresql.JSONB(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("refund_amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="requested", nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        _created(),
        _updated(),
        sa.CheckConstraint("change_no > 0", name=op.f("ck_booking_changes_change_no_positive")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_booking_changes_quantity_positive")),
        sa.CheckConstraint(
            "refund_amount >= 0", name=op.f("ck_booking_changes_refund_nonnegative")
        ),
        sa.CheckConstraint(
            "status IN ('requested', 'refunded', 'done', 'void')",
            name=op.f("ck_booking_changes_status"),
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["bookings.id"], name=op.f("fk_booking_changes_booking_id_bookings")
        ),
        sa.PrimaryKeyConstraint("booking_id", "change_no", name=op.f("pk_booking_changes")),
    )
    op.drop_constraint(op.f("ck_payments_kind"), "payments", type_="check")
    op.create_check_constraint(
        op.f("ck_payments_kind"), "payments", "kind IN ('charge', 'refund', 'partial_refund')"
    )
    op.drop_index("uq_payments_one_success_per_booking", table_name="payments")
    op.create_index(
        "uq_payments_one_success_per_booking",
        "payments",
        ["booking_id", "kind"],
        unique=True,
        postgresql_where=sa.text("status = 'succeeded' AND kind <> 'partial_refund'"),
    )

    # every existing event: its default type, counters from its bookings; every booking: its line
    op.execute(
        """
        INSERT INTO ticket_types (id, event_id, name, price, currency, is_default, position,
                                  held, sold)
        SELECT gen_random_uuid(), e.id, 'General admission', e.price, e.currency, true, 0,
               COALESCE((SELECT sum(b.quantity) FROM bookings b
                         WHERE b.event_id = e.id AND b.status = 'held'), 0),
               COALESCE((SELECT sum(b.quantity) FROM bookings b
                         WHERE b.event_id = e.id AND b.status = 'confirmed'), 0)
        FROM events e
        """
    )
    op.execute(
        """
        INSERT INTO booking_lines (booking_id, ticket_type_id, quantity, unit_price)
        SELECT b.id, t.id, b.quantity, round(b.amount / b.quantity, 2)
        FROM bookings b JOIN ticket_types t ON t.event_id = b.event_id AND t.is_default
        """
    )
    op.execute(
        """
        UPDATE tickets k SET ticket_type_id = t.id
        FROM ticket_types t WHERE t.event_id = k.event_id AND t.is_default
        """
    )
    for statement in _statements(FUNCTIONS):
        op.execute(statement)


def downgrade() -> None:
    for statement in DROP_FUNCTIONS.strip().splitlines():  # one statement a line
        op.execute(statement)
    op.drop_constraint(
        op.f("fk_tickets_ticket_type_id_ticket_types"), "tickets", type_="foreignkey"
    )
    op.drop_column("tickets", "ticket_type_id")
    op.execute("DELETE FROM payments WHERE kind = 'partial_refund'")
    op.drop_index("uq_payments_one_success_per_booking", table_name="payments")
    op.create_index(
        "uq_payments_one_success_per_booking",
        "payments",
        ["booking_id", "kind"],
        unique=True,
        postgresql_where=sa.text("status = 'succeeded'"),
    )
    op.drop_constraint(op.f("ck_payments_kind"), "payments", type_="check")
    op.create_check_constraint(op.f("ck_payments_kind"), "payments", "kind IN ('charge', 'refund')")
    op.drop_table("booking_changes")
    op.drop_index("ix_booking_lines_ticket_type", table_name="booking_lines")
    op.drop_table("booking_lines")
    op.drop_index("ix_bookings_promo_code", table_name="bookings")
    op.drop_constraint(
        op.f("fk_bookings_promo_code_id_promo_codes"), "bookings", type_="foreignkey"
    )
    op.drop_column("bookings", "discount")
    op.drop_column("bookings", "promo_code_id")
    op.drop_table("promo_codes")
    op.drop_index("uq_ticket_types_event_default", table_name="ticket_types")
    op.drop_index("ix_ticket_types_event_position", table_name="ticket_types")
    op.drop_table("ticket_types")
