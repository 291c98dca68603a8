"""webhook redelivery on demand: a delivery may repeat another of the same message

Revision ID: 0017redeliver
Revises: 0017refundrefusals
Create Date: 2026-12-05 13:00:00.000000

Issue 30 (the back office's "redeliver" button, ``POST .../webhooks/{id}/deliveries/{id}/
redeliver``). A redelivery is a new ``webhook_deliveries`` row of the same message and
subscription (same ``webhook-id``), ``pending`` so the outbox relay starts its workflow like
any other. ``redelivery_of`` names the delivery it repeats; ``redelivery_key`` makes the request
idempotent. The outbox's one row per (message, subscription) stays unique for the originals (a
partial unique index under the old constraint's name). Downgrade deletes the redeliveries.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017redeliver"
down_revision: str | None = "0017refundrefusals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "webhook_deliveries",
        sa.Column("redelivery_of", postgresql.UUID(as_uuid=True), nullable=True),
    )
    op.add_column(
        "webhook_deliveries", sa.Column("redelivery_key", sa.String(length=200), nullable=True)
    )
    op.create_foreign_key(
        op.f("fk_webhook_deliveries_redelivery_of_webhook_deliveries"),
        "webhook_deliveries",
        "webhook_deliveries",
        ["redelivery_of"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_unique_constraint(
        op.f("uq_webhook_deliveries_redelivery_key"), "webhook_deliveries", ["redelivery_key"]
    )
    op.drop_constraint("uq_webhook_deliveries_message", "webhook_deliveries", type_="unique")
    op.create_index(
        "uq_webhook_deliveries_message",
        "webhook_deliveries",
        ["message_id", "subscription_id"],
        unique=True,
        postgresql_where=sa.text("redelivery_of IS NULL"),
    )


def downgrade() -> None:
    op.execute("DELETE FROM webhook_deliveries WHERE redelivery_of IS NOT NULL")
    op.drop_index("uq_webhook_deliveries_message", table_name="webhook_deliveries")
    op.create_unique_constraint(
        "uq_webhook_deliveries_message", "webhook_deliveries", ["message_id", "subscription_id"]
    )
    op.drop_constraint(
        op.f("uq_webhook_deliveries_redelivery_key"), "webhook_deliveries", type_="unique"
    )
    op.drop_constraint(
        op.f("fk_webhook_deliveries_redelivery_of_webhook_deliveries"),
        "webhook_deliveries",
        type_="foreignkey",
    )
    op.drop_column("webhook_deliveries", "redelivery_key")
    op.drop_column("webhook_deliveries", "redelivery_of")
