"""bookings: the channel a booking was sold through, and the organizer's note

Revision ID: 0012orders
Revises: 0011refundpolicy
Create Date: 2026-12-05 11:00:00.000000

Issue 29: organizer orders (comps and box-office sales) are bookings like any other, told
apart by ``bookings.channel`` (``online`` for every booking before this, ``comp``,
``box_office``) and carrying the staff member's ``note``. Exports and analytics split sales by
channel. The charge of such a booking is a ``payments`` row whose provider is ``comp`` or
``box_office`` (a 0.00 online booking: ``free``); no new table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012orders"
down_revision: str | None = "0011refundpolicy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "bookings",
        sa.Column("channel", sa.String(16), nullable=False, server_default="online"),
    )
    op.add_column("bookings", sa.Column("note", sa.String(500), nullable=True))
    op.create_check_constraint(
        op.f("ck_bookings_channel"), "bookings", "channel IN ('online', 'comp', 'box_office')"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_bookings_channel"), "bookings", type_="check")
    op.drop_column("bookings", "note")
    op.drop_column("bookings", "channel")
