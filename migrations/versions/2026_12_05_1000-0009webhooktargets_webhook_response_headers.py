"""webhook delivery log: the answer's headers, never its body

Revision ID: 0009webhooktargets
Revises: 0008tickettypes
Create Date: 2026-12-05 10:00:00.000000

Issue 28: the delivery log keeps an attempt's status, timing and the answer's headers
(``webhook_attempts.response_headers``), not the foreign body. Errors used to carry the first
200 characters of the answer (``HTTP 500: <body>``); those snippets are cut back to the status
here, in the attempts and in each delivery's last error. (The downgrade drops the column; the
removed snippets stay removed.)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009webhooktargets"
down_revision: str | None = "0008tickettypes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "webhook_attempts",
        sa.Column("response_headers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.execute(
        "UPDATE webhook_attempts SET error = substring(error FROM '^HTTP [0-9]+') "
        "WHERE error ~ '^HTTP [0-9]+: '"
    )
    op.execute(
        "UPDATE webhook_deliveries SET last_error = substring(last_error FROM '^HTTP [0-9]+') "
        "WHERE last_error ~ '^HTTP [0-9]+: '"
    )


def downgrade() -> None:
    op.drop_column("webhook_attempts", "response_headers")
