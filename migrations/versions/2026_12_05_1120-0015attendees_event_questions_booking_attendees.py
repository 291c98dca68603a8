"""attendees and questions: an event's questions, a booking's attendees and answers

Revision ID: 0015attendees
Revises: 0014guestcheckout
Create Date: 2026-12-05 11:20:00.000000

Issue 32. ``event_questions``: what an organizer asks per ticket or per booking (text,
choice, multiple choice, checkbox, country), optionally only for some ticket types.
``booking_attendees``: one row per booking with its attendees (one per seat, in the booking's
order: name, email, per-ticket answers) and its per-booking answers, as JSON.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015attendees"
down_revision: str | None = "0014guestcheckout"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_questions",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "options", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column("required", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("per", sa.String(length=8), nullable=False),
        sa.Column(
            "ticket_type_ids", postgresql.ARRAY(postgresql.UUID(as_uuid=True)), nullable=True
        ),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "kind IN ('text', 'choice', 'multiple_choice', 'checkbox', 'country')",
            name=op.f("ck_event_questions_kind"),
        ),
        sa.CheckConstraint("per IN ('ticket', 'booking')", name=op.f("ck_event_questions_per")),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_event_questions_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_questions")),
    )
    op.create_index(
        op.f("ix_event_questions_event_id"), "event_questions", ["event_id"], unique=False
    )
    op.create_table(
        "booking_attendees",
        sa.Column("booking_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column(
            "attendees",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "answers", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["bookings.id"],
            name=op.f("fk_booking_attendees_booking_id_bookings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("booking_id", name=op.f("pk_booking_attendees")),
    )


def downgrade() -> None:
    op.drop_table("booking_attendees")
    op.drop_index(op.f("ix_event_questions_event_id"), table_name="event_questions")
    op.drop_table("event_questions")
