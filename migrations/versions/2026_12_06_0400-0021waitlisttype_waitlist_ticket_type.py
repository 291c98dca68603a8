"""waitlist per ticket type: a seated event's waitlist entry names the seats it waits for

Revision ID: 0021waitlisttype
Revises: 0020seattake
Create Date: 2026-12-06 04:00:00.000000

Issue 34. ``waitlist_entries.ticket_type_id`` (NULL: the event's default tickets, any seat): an
entry of a seated event may wait for one ticket type, i.e. the seats of its plan category at
its price. It is offered only seats of that category that nobody else can claim
(evently/waitlist.py), and accepting the offer buys that type (evently/inventory/seats.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021waitlisttype"
down_revision: str | None = "0020seattake"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "waitlist_entries",
        sa.Column(
            "ticket_type_id",
            sa.UUID(),
            sa.ForeignKey(
                "ticket_types.id", name="fk_waitlist_entries_ticket_type_id_ticket_types"
            ),
            nullable=True,
        ),
    )


def downgrade() -> None:
    op.drop_column("waitlist_entries", "ticket_type_id")
