"""payment attempts: our own record of each charge attempt at the provider

Revision ID: 0004payattempts
Revises: 0003waitlist
Create Date: 2026-11-28 12:00:00.000000

A charge is prepared at the provider (a Stripe PaymentIntent, unconfirmed), its id recorded
here, then confirmed: a retried activity confirms the payment it recorded and never creates a
second one, even where the provider ignores idempotency keys. Webhooks find their booking here
by ``provider_payment_id``; 3-D Secure attempts wait here as ``requires_action``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004payattempts"
down_revision: str | None = "0003waitlist"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_attempts",
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("booking_id", sa.UUID(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_payment_id", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("payment_method", sa.String(length=100), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("failure_code", sa.String(length=100), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('requires_confirmation', 'requires_action', 'processing', 'succeeded', "
            "'failed')",
            name=op.f("ck_payment_attempts_status"),
        ),
        sa.CheckConstraint("attempt >= 1", name=op.f("ck_payment_attempts_attempt_positive")),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["bookings.id"], name=op.f("fk_payment_attempts_booking_id_bookings")
        ),
        sa.PrimaryKeyConstraint("idempotency_key", name=op.f("pk_payment_attempts")),
        sa.UniqueConstraint(
            "provider_payment_id", name=op.f("uq_payment_attempts_provider_payment_id")
        ),
    )
    op.create_index(
        "uq_payment_attempts_booking_attempt",
        "payment_attempts",
        ["booking_id", "attempt"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_payment_attempts_booking_attempt", table_name="payment_attempts")
    op.drop_table("payment_attempts")
