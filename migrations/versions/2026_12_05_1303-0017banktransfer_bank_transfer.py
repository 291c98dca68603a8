"""bank transfer: the organization's bank details, the event's window, the booking's reference

Revision ID: 0017banktransfer
Revises: 0017buyergaps
Create Date: 2026-12-05 11:40:00.000000

Issue 29. ``organizations.bank_account_holder`` / ``bank_iban`` / ``bank_bic`` (what a buyer
paying by transfer is shown); ``events.bank_transfer_days`` (NULL: no bank transfer, else the
window in days); ``bookings.payment_reference`` (unique: the reference the buyer writes on the
transfer) and ``bookings.refund_due`` (money arrived after the seats were gone: finance pays it
back).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017banktransfer"
down_revision: str | None = "0017buyergaps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("organizations", sa.Column("bank_account_holder", sa.String(200)))
    op.add_column("organizations", sa.Column("bank_iban", sa.String(34)))
    op.add_column("organizations", sa.Column("bank_bic", sa.String(11)))
    op.add_column("events", sa.Column("bank_transfer_days", sa.Integer()))
    op.add_column("bookings", sa.Column("payment_reference", sa.String(20)))
    op.add_column(
        "bookings",
        sa.Column("refund_due", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.create_index("uq_bookings_payment_reference", "bookings", ["payment_reference"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_bookings_payment_reference", table_name="bookings")
    op.drop_column("bookings", "refund_due")
    op.drop_column("bookings", "payment_reference")
    op.drop_column("events", "bank_transfer_days")
    op.drop_column("organizations", "bank_bic")
    op.drop_column("organizations", "bank_iban")
    op.drop_column("organizations", "bank_account_holder")
