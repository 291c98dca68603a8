"""guest checkout: booking access keys

Revision ID: 0014guestcheckout
Revises: 0013accounttokens
Create Date: 2026-12-05 11:10:00.000000

Issue 32. A guest's booking (``POST /bookings/reserve`` without a token, with ``buyer``)
belongs to the account row of the buyer's email (a *guest* row, password hash ``!guest``, when
the email had none: nothing to log in with). ``booking_access_keys`` holds the keys that open
one booking without an account: only a SHA-256 of each key (the key is a MAC of the row id
with the server's key, so the confirmation mail can carry it), revocable (``revoked_at``). A
booking with a key row is a guest booking: an account sees it in "my bookings" only once its
email is verified. No foreign key to ``bookings``: the key is made as soon as the reserve
answers, possibly before the booking row exists (a late, 202 reserve).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014guestcheckout"
down_revision: str | None = "0013accounttokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "booking_access_keys",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("booking_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_booking_access_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_access_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_booking_access_keys_key_hash")),
    )
    op.create_index(
        op.f("ix_booking_access_keys_booking_id"),
        "booking_access_keys",
        ["booking_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_booking_access_keys_booking_id"), table_name="booking_access_keys")
    op.drop_table("booking_access_keys")
