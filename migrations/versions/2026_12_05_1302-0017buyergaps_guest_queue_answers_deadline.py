"""guests in the waiting room; the organizer's deadline for attendees' answers

Revision ID: 0017buyergaps
Revises: 0017redeliver
Create Date: 2026-12-05 13:00:00.000000

Issue 32. A guest's place in a waiting room belongs to a guest session, not an account, so
``queue_entries.user_id`` no longer refers to ``users`` (an account's place still holds its
user id). ``events.attendee_answers_until``: after it, a booking's attendees and answers can no
longer be changed (NULL: no deadline).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017buyergaps"
down_revision: str | None = "0017redeliver"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("fk_queue_entries_user_id_users"), "queue_entries", type_="foreignkey")
    op.add_column(
        "events", sa.Column("attendee_answers_until", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("events", "attendee_answers_until")
    # guests' places name no account: they go with the reference back
    op.execute(
        "DELETE FROM queue_entries q "
        "WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = q.user_id)"
    )
    op.create_foreign_key(
        op.f("fk_queue_entries_user_id_users"), "queue_entries", "users", ["user_id"], ["id"]
    )
