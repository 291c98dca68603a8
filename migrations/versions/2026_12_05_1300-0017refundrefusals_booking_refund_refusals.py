"""refunds the provider refuses: shown on the booking until one goes through

Revision ID: 0017refundrefusals
Revises: 0016transfers
Create Date: 2026-12-05 13:00:00.000000

Issue 35. A refund the provider refuses records nothing in ``payments`` (Temporal retries the
activity); these columns make the refusal visible to the buyer and to support meanwhile:
``refund_failure`` (the provider's code of the last refusal) and ``refund_failing_since`` (the
first refusal of the refund still owed), both cleared when a refund goes through, and
``refund_refusals`` (how many times the provider said no, kept).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017refundrefusals"
down_revision: str | None = "0016transfers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("bookings", sa.Column("refund_failure", sa.String(length=100), nullable=True))
    op.add_column(
        "bookings", sa.Column("refund_failing_since", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "bookings",
        sa.Column("refund_refusals", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.create_index(
        "ix_bookings_refund_failing",
        "bookings",
        ["refund_failing_since"],
        postgresql_where=sa.text("refund_failing_since IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_bookings_refund_failing", table_name="bookings")
    op.drop_column("bookings", "refund_refusals")
    op.drop_column("bookings", "refund_failing_since")
    op.drop_column("bookings", "refund_failure")
