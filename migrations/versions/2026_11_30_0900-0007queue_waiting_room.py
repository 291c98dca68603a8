"""waiting room: the event's ``queue`` mode and the durable record of the line

Revision ID: 0007queue
Revises: 0006orgs
Create Date: 2026-11-30 09:00:00.000000

- ``events.queue``: ``auto`` (the default: queue only while the reserve path is saturated),
  ``on`` or ``off``.
- ``queue_entries``: one row per buyer and event, with the buyer's place in the line
  (``position``, 1-based, unique per event) — the durable copy of the line that lives in Redis
  (evently/waitingroom.py); ``admitted_at`` is written by the admission workflow's activity.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007queue"
down_revision: str | None = "0006orgs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "events",
        sa.Column("queue", sa.String(length=8), server_default="auto", nullable=False),
    )
    op.create_check_constraint(op.f("ck_events_queue"), "events", "queue IN ('on', 'off', 'auto')")
    op.create_table(
        "queue_entries",
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column(
            "joined_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("position > 0", name=op.f("ck_queue_entries_position_positive")),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_queue_entries_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_queue_entries_user_id_users")
        ),
        sa.PrimaryKeyConstraint("event_id", "user_id", name=op.f("pk_queue_entries")),
        sa.UniqueConstraint("event_id", "position", name=op.f("uq_queue_entries_event_position")),
    )


def downgrade() -> None:
    op.drop_table("queue_entries")
    op.drop_constraint(op.f("ck_events_queue"), "events", type_="check")
    op.drop_column("events", "queue")
