"""refund policy per event, tickets promised to a refund

Revision ID: 0011refundpolicy
Revises: 0010doorscope
Create Date: 2026-12-05 10:00:00.000000

- ``events.refund_policy`` (JSONB): who may refund a booking of the event through Evently
  (evently/refund_policy.py): ``{"mode": "until", "hours_before_start": n}`` (buyers until n
  hours before the start; the default, n = 0), ``{"mode": "organizer_only"}`` or
  ``{"mode": "none"}``. Existing events get the default.
- ``tickets.refund_change`` (integer, null): the ticket is promised to a refund that was
  accepted (0: the whole booking's cancellation, n: the booking's partial change n). Set in the
  transaction that accepts the refund, after locking the tickets and finding none checked in;
  the door refuses such a ticket (evently/tickets/checkin.py), so nothing used is refunded and
  nothing refunded is used.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011refundpolicy"
down_revision: str | None = "0010doorscope"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "events",
        sa.Column(
            "refund_policy",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("""'{"mode": "until", "hours_before_start": 0}'::jsonb"""),
        ),
    )
    op.add_column("tickets", sa.Column("refund_change", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("tickets", "refund_change")
    op.drop_column("events", "refund_policy")
