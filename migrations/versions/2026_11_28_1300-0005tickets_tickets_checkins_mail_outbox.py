"""tickets, check-in scans, the door role and the mail outbox on notifications

Revision ID: 0005tickets
Revises: 0004payattempts
Create Date: 2026-11-28 12:00:00.000000

- ``tickets``: one per seat of a confirmed booking (issued by the confirm statement), with the
  per-event serial ``seat`` (``events.tickets_issued`` is the counter) and the first admission.
  Bookings confirmed before this revision get their tickets here (serials in confirmation
  order), so ``evently check``'s "confirmed ⇔ valid tickets" holds from the start.
- ``checkin_scans``: every scan answered, keyed by the device's nonce.
- ``users.role`` may be ``door``.
- ``notifications.mail_*``: the outbox. Rows written before this revision are ``skipped``
  (nobody gets months-old mail on deploy); new rows are ``pending``. A statement-level trigger
  NOTIFYs ``evently_outbox`` on insert, delivered at commit, which wakes the mail dispatcher.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005tickets"
down_revision: str | None = "0004payattempts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES_BEFORE = "role IN ('buyer', 'support', 'admin')"
ROLES_AFTER = "role IN ('buyer', 'support', 'admin', 'door')"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_role"), "users", ROLES_AFTER)

    op.add_column(
        "events", sa.Column("tickets_issued", sa.Integer(), server_default="0", nullable=False)
    )

    op.create_table(
        "tickets",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("booking_id", sa.UUID(), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("seat", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="valid", nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_in_device", sa.String(length=100), nullable=True),
        sa.Column("checkin_nonce", sa.String(length=100), nullable=True),
        sa.CheckConstraint("status IN ('valid', 'revoked')", name=op.f("ck_tickets_status")),
        sa.CheckConstraint("seat > 0", name=op.f("ck_tickets_seat_positive")),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["bookings.id"], name=op.f("fk_tickets_booking_id_bookings")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_tickets_event_id_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("event_id", "seat", name="uq_tickets_event_seat"),
    )
    op.create_index(op.f("ix_tickets_booking_id"), "tickets", ["booking_id"], unique=False)

    op.create_table(
        "checkin_scans",
        sa.Column("nonce", sa.String(length=100), nullable=False),
        sa.Column("ticket_id", sa.UUID(), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("device_id", sa.String(length=100), nullable=False),
        sa.Column("scanned_by", sa.UUID(), nullable=True),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("offline", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("result", sa.String(length=32), nullable=False),
        sa.Column("conflict", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_in_device", sa.String(length=100), nullable=True),
        sa.CheckConstraint(
            "result IN ('admitted', 'already_checked_in', 'ticket_revoked', 'wrong_event')",
            name=op.f("ck_checkin_scans_result"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_checkin_scans_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_checkin_scans_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["scanned_by"], ["users.id"], name=op.f("fk_checkin_scans_scanned_by_users")
        ),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_checkin_scans")),
    )
    op.create_index(
        op.f("ix_checkin_scans_ticket_id"), "checkin_scans", ["ticket_id"], unique=False
    )
    op.create_index(
        "ix_checkin_scans_event_received",
        "checkin_scans",
        ["event_id", "received_at"],
        unique=False,
    )

    # bookings confirmed before tickets existed get theirs (serials in confirmation order)
    op.execute(
        """
        INSERT INTO tickets (id, booking_id, event_id, seat, status, issued_at)
        SELECT gen_random_uuid(), b.id, b.event_id, b.last_seat - b.quantity + n, 'valid',
               date_trunc('second', COALESCE(b.confirmed_at, now()))
        FROM (
            SELECT id, event_id, quantity, confirmed_at,
                   sum(quantity) OVER (PARTITION BY event_id ORDER BY confirmed_at, id)
                       AS last_seat
            FROM bookings WHERE status = 'confirmed'
        ) b CROSS JOIN LATERAL generate_series(1, b.quantity) AS n
        """
    )
    op.execute(
        """
        UPDATE events e SET tickets_issued = t.n
        FROM (SELECT event_id, max(seat) AS n FROM tickets GROUP BY event_id) t
        WHERE e.id = t.event_id
        """
    )

    # the outbox: old notices are not mailed, new ones are
    op.add_column(
        "notifications",
        sa.Column("mail_status", sa.String(length=16), server_default="skipped", nullable=False),
    )
    op.alter_column("notifications", "mail_status", server_default="pending")
    op.add_column(
        "notifications",
        sa.Column("mail_attempts", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "notifications",
        sa.Column("mail_lease_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "notifications", sa.Column("mailed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("notifications", sa.Column("mail_error", sa.String(length=500), nullable=True))
    op.create_check_constraint(
        op.f("ck_notifications_mail_status"),
        "notifications",
        "mail_status IN ('pending', 'sent', 'failed', 'skipped')",
    )
    op.create_index(
        "ix_notifications_mail_pending",
        "notifications",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("mail_status = 'pending'"),
    )
    op.execute(
        """
        CREATE FUNCTION evently_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('evently_outbox', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER notifications_outbox_notify AFTER INSERT ON notifications
        FOR EACH STATEMENT EXECUTE FUNCTION evently_outbox_notify()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS notifications_outbox_notify ON notifications")
    op.execute("DROP FUNCTION IF EXISTS evently_outbox_notify()")
    op.drop_index(
        "ix_notifications_mail_pending",
        table_name="notifications",
        postgresql_where=sa.text("mail_status = 'pending'"),
    )
    op.drop_constraint(op.f("ck_notifications_mail_status"), "notifications", type_="check")
    for column in ("mail_error", "mailed_at", "mail_lease_until", "mail_attempts", "mail_status"):
        op.drop_column("notifications", column)
    op.drop_index("ix_checkin_scans_event_received", table_name="checkin_scans")
    op.drop_index(op.f("ix_checkin_scans_ticket_id"), table_name="checkin_scans")
    op.drop_table("checkin_scans")
    op.drop_index(op.f("ix_tickets_booking_id"), table_name="tickets")
    op.drop_table("tickets")
    op.drop_column("events", "tickets_issued")
    # never promote: a door account becomes a disabled buyer
    op.execute("UPDATE users SET role = 'buyer', is_active = false WHERE role = 'door'")
    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_role"), "users", ROLES_BEFORE)
