"""waitlist pool: seats kept for the waitlist, and the number of buyers waiting, on the event row

Revision ID: 0003waitlist
Revises: 0002search
Create Date: 2026-11-22 22:10:00.000000

``events.waitlist_pool``: freed seats kept out of the public pool because someone waits (they
count in ``held`` until they are offered). ``events.waitlist_waiting``: entries in status
``waiting``. Both live on the event row so the release statement decides "public pool or
waitlist" on the locked row it updates, never on a stale snapshot.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003waitlist"
down_revision: str | None = "0002search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "events", sa.Column("waitlist_pool", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "events", sa.Column("waitlist_waiting", sa.Integer(), server_default="0", nullable=False)
    )
    op.create_check_constraint(
        op.f("ck_events_waitlist_pool_in_held"), "events", "waitlist_pool BETWEEN 0 AND held"
    )
    op.create_check_constraint(
        op.f("ck_events_waitlist_waiting_nonnegative"), "events", "waitlist_waiting >= 0"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_events_waitlist_waiting_nonnegative"), "events", type_="check")
    op.drop_constraint(op.f("ck_events_waitlist_pool_in_held"), "events", type_="check")
    op.drop_column("events", "waitlist_waiting")
    op.drop_column("events", "waitlist_pool")
