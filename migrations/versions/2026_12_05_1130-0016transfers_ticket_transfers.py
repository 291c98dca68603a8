"""ticket transfer: the per-event switch and deadline, and the transfers made

Revision ID: 0016transfers
Revises: 0015attendees
Create Date: 2026-12-05 11:30:00.000000

Issue 32. ``events.transfers_allowed`` (default true) and ``events.transfer_deadline`` (NULL:
until the event starts). ``ticket_transfers``: one row per transferred ticket (the revoked
one), naming its replacement and the new attendee; it is what makes a retried transfer answer
the same replacement.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016transfers"
down_revision: str | None = "0015attendees"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "events",
        sa.Column(
            "transfers_allowed", sa.Boolean(), server_default=sa.text("true"), nullable=False
        ),
    )
    op.add_column(
        "events", sa.Column("transfer_deadline", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "ticket_transfers",
        sa.Column("old_ticket_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("new_ticket_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("booking_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["old_ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_transfers_old_ticket_id_tickets"),
        ),
        sa.ForeignKeyConstraint(
            ["new_ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_transfers_new_ticket_id_tickets"),
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["bookings.id"], name=op.f("fk_ticket_transfers_booking_id_bookings")
        ),
        sa.PrimaryKeyConstraint("old_ticket_id", name=op.f("pk_ticket_transfers")),
        sa.UniqueConstraint("new_ticket_id", name=op.f("uq_ticket_transfers_new_ticket_id")),
    )
    op.create_index(
        op.f("ix_ticket_transfers_booking_id"), "ticket_transfers", ["booking_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ticket_transfers_booking_id"), table_name="ticket_transfers")
    op.drop_table("ticket_transfers")
    op.drop_column("events", "transfer_deadline")
    op.drop_column("events", "transfers_allowed")
