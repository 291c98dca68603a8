"""organizations: members, venues and events owned by one, organizer webhooks, audit log

Revision ID: 0006orgs
Revises: 0005tickets
Create Date: 2026-11-29 09:00:00.000000

- ``organizations`` and ``organization_members`` (owner, manager, finance, door).
- The venues and events that exist belong to the DEFAULT organization this migration creates
  (id ``00000000-0000-4000-8000-000000000001``, "Default organization"); the column default
  keeps every writer that does not name an organization working (the platform admin's
  ``/admin`` routes, the seed, the benchmarks). An event's organization is its venue's,
  enforced by the key ``(venue_id, organization_id) → venues (id, organization_id)``.
- Organizer webhooks: ``webhook_subscriptions``; the outbox ``webhook_messages`` and one
  ``webhook_deliveries`` row per subscribed endpoint, written by the triggers below IN THE
  SAME TRANSACTION as the change they report, whoever makes it (the seat statements, the
  late-payment rule, a refund, a waitlist offer, an event's sell-out or cancellation);
  ``webhook_attempts`` is the delivery log.
- ``audit_log``: organizer actions.

The triggers fire only on the transitions they report (their WHEN clauses are evaluated
without calling any function), and write nothing unless the event's organization has an active
subscription to that type: a sale without webhooks pays one cheap ``WHEN`` per row change.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006orgs"
down_revision: str | None = "0005tickets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_ORGANIZATION_ID = "00000000-0000-4000-8000-000000000001"
DEFAULT = sa.text(f"'{DEFAULT_ORGANIZATION_ID}'::uuid")


def _created() -> sa.Column[object]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def _updated() -> sa.Column[object]:
    return sa.Column(
        "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


FUNCTIONS = r"""
CREATE FUNCTION evently_iso(ts timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- does this organization want this type of message? (an active subscription to it)
CREATE FUNCTION evently_webhook_wanted(p_org uuid, p_type text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM webhook_subscriptions s
        WHERE s.organization_id = p_org AND s.status = 'active' AND p_type = ANY (s.event_types)
    )
$$;

-- the outbox row (once per dedupe key) and one pending delivery per subscribed endpoint
CREATE FUNCTION evently_webhook_enqueue(p_org uuid, p_type text, p_dedupe text, p_data jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_message uuid;
BEGIN
    INSERT INTO webhook_messages (id, organization_id, event_type, dedupe_key, payload)
    VALUES (gen_random_uuid(), p_org, p_type, p_dedupe, p_data)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id INTO v_message;
    IF v_message IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO webhook_deliveries (id, message_id, subscription_id, status)
    SELECT gen_random_uuid(), v_message, s.id, 'pending'
    FROM webhook_subscriptions s
    WHERE s.organization_id = p_org AND s.status = 'active' AND p_type = ANY (s.event_types);
END $$;

CREATE FUNCTION evently_webhook_buyer(p_user uuid) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', u.id, 'email', u.email, 'name', u.full_name)
    FROM users u WHERE u.id = p_user
$$;

-- booking.confirmed / booking.cancelled
CREATE FUNCTION evently_webhook_on_booking() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_type text := CASE NEW.status WHEN 'confirmed' THEN 'booking.confirmed'
                                   ELSE 'booking.cancelled' END;
    v_event record;
BEGIN
    SELECT id, organization_id, name, starts_at INTO v_event FROM events WHERE id = NEW.event_id;
    IF NOT evently_webhook_wanted(v_event.organization_id, v_type) THEN
        RETURN NULL;
    END IF;
    PERFORM evently_webhook_enqueue(
        v_event.organization_id, v_type, v_type || ':' || NEW.id,
        jsonb_build_object(
            'booking_id', NEW.id, 'event_id', NEW.event_id, 'event_name', v_event.name,
            'event_starts_at', evently_iso(v_event.starts_at),
            'status', NEW.status, 'previous_status', OLD.status, 'quantity', NEW.quantity,
            'amount', to_char(NEW.amount, 'FM999999999990.00'), 'currency', NEW.currency,
            'buyer', evently_webhook_buyer(NEW.user_id),
            'created_at', evently_iso(NEW.created_at),
            'confirmed_at', evently_iso(NEW.confirmed_at),
            'ended_at', evently_iso(NEW.ended_at), 'end_reason', NEW.end_reason));
    RETURN NULL;
END $$;

-- booking.refunded
CREATE FUNCTION evently_webhook_on_refund() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_booking record;
    v_event record;
BEGIN
    SELECT id, event_id, user_id INTO v_booking FROM bookings WHERE id = NEW.booking_id;
    SELECT id, organization_id, name INTO v_event FROM events WHERE id = v_booking.event_id;
    IF NOT evently_webhook_wanted(v_event.organization_id, 'booking.refunded') THEN
        RETURN NULL;
    END IF;
    PERFORM evently_webhook_enqueue(
        v_event.organization_id, 'booking.refunded', 'booking.refunded:' || NEW.booking_id,
        jsonb_build_object(
            'booking_id', NEW.booking_id, 'event_id', v_event.id, 'event_name', v_event.name,
            'amount', to_char(NEW.amount, 'FM999999999990.00'), 'currency', NEW.currency,
            'provider', NEW.provider, 'refunded_at', evently_iso(NEW.created_at),
            'buyer', evently_webhook_buyer(v_booking.user_id)));
    RETURN NULL;
END $$;

-- waitlist.offered
CREATE FUNCTION evently_webhook_on_offer() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_event record;
BEGIN
    SELECT id, organization_id, name INTO v_event FROM events WHERE id = NEW.event_id;
    IF NOT evently_webhook_wanted(v_event.organization_id, 'waitlist.offered') THEN
        RETURN NULL;
    END IF;
    PERFORM evently_webhook_enqueue(
        v_event.organization_id, 'waitlist.offered',
        'waitlist.offered:' || NEW.id || ':' || coalesce(NEW.offer_id, ''),
        jsonb_build_object(
            'entry_id', NEW.id, 'event_id', v_event.id, 'event_name', v_event.name,
            'seats', NEW.offered_quantity, 'offer_expires_at', evently_iso(NEW.offer_expires_at),
            'buyer', evently_webhook_buyer(NEW.user_id)));
    RETURN NULL;
END $$;

-- event.sold_out (the last seat on sale taken; again after seats came back and sold out)
CREATE FUNCTION evently_webhook_on_sold_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT evently_webhook_wanted(NEW.organization_id, 'event.sold_out') THEN
        RETURN NULL;
    END IF;
    PERFORM evently_webhook_enqueue(
        NEW.organization_id, 'event.sold_out',
        'event.sold_out:' || NEW.id || ':' || evently_iso(NEW.updated_at),
        jsonb_build_object(
            'event_id', NEW.id, 'event_name', NEW.name, 'starts_at', evently_iso(NEW.starts_at),
            'capacity', NEW.capacity, 'held', NEW.held, 'sold', NEW.sold,
            'sold_out_at', evently_iso(NEW.updated_at)));
    RETURN NULL;
END $$;

-- event.cancelled
CREATE FUNCTION evently_webhook_on_event_cancelled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT evently_webhook_wanted(NEW.organization_id, 'event.cancelled') THEN
        RETURN NULL;
    END IF;
    PERFORM evently_webhook_enqueue(
        NEW.organization_id, 'event.cancelled', 'event.cancelled:' || NEW.id,
        jsonb_build_object(
            'event_id', NEW.id, 'event_name', NEW.name, 'starts_at', evently_iso(NEW.starts_at),
            'cancelled_at', evently_iso(coalesce(NEW.cancelled_at, now()))));
    RETURN NULL;
END $$;

CREATE TRIGGER webhook_booking_status AFTER UPDATE OF status ON bookings FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status AND (NEW.status = 'confirmed'
          OR (NEW.status = 'cancelled' AND OLD.status IN ('held', 'confirmed'))))
    EXECUTE FUNCTION evently_webhook_on_booking();

CREATE TRIGGER webhook_refund AFTER INSERT ON payments FOR EACH ROW
    WHEN (NEW.kind = 'refund' AND NEW.status = 'succeeded')
    EXECUTE FUNCTION evently_webhook_on_refund();

CREATE TRIGGER webhook_waitlist_offer AFTER UPDATE OF status ON waitlist_entries FOR EACH ROW
    WHEN (NEW.status = 'offered' AND OLD.status IS DISTINCT FROM 'offered')
    EXECUTE FUNCTION evently_webhook_on_offer();

CREATE TRIGGER webhook_event_sold_out AFTER UPDATE OF available ON events FOR EACH ROW
    WHEN (OLD.available > 0 AND NEW.available = 0 AND NEW.status = 'published')
    EXECUTE FUNCTION evently_webhook_on_sold_out();

CREATE TRIGGER webhook_event_cancelled AFTER UPDATE OF status ON events FOR EACH ROW
    WHEN (NEW.status = 'cancelled' AND OLD.status IS DISTINCT FROM 'cancelled')
    EXECUTE FUNCTION evently_webhook_on_event_cancelled();
"""

DROP_FUNCTIONS = """
DROP TRIGGER IF EXISTS webhook_event_cancelled ON events;
DROP TRIGGER IF EXISTS webhook_event_sold_out ON events;
DROP TRIGGER IF EXISTS webhook_waitlist_offer ON waitlist_entries;
DROP TRIGGER IF EXISTS webhook_refund ON payments;
DROP TRIGGER IF EXISTS webhook_booking_status ON bookings;
DROP FUNCTION IF EXISTS evently_webhook_on_event_cancelled();
DROP FUNCTION IF EXISTS evently_webhook_on_sold_out();
DROP FUNCTION IF EXISTS evently_webhook_on_offer();
DROP FUNCTION IF EXISTS evently_webhook_on_refund();
DROP FUNCTION IF EXISTS evently_webhook_on_booking();
DROP FUNCTION IF EXISTS evently_webhook_buyer(uuid);
DROP FUNCTION IF EXISTS evently_webhook_enqueue(uuid, text, text, jsonb);
DROP FUNCTION IF EXISTS evently_webhook_wanted(uuid, text);
DROP FUNCTION IF EXISTS evently_iso(timestamptz);
"""


def _statements(script: str) -> list[str]:
    """One statement at a time (asyncpg runs one per call): they are separated by blank
    lines here, and no function body has one."""
    return [part.strip() for part in script.split("\n\n") if part.strip()]


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_by", sa.UUID(), nullable=True),
        _created(),
        _updated(),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_organizations_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
    )
    op.create_index(
        "uq_organizations_one_default",
        "organizations",
        ["is_default"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    op.execute(
        f"INSERT INTO organizations (id, name, is_default) "
        f"VALUES ('{DEFAULT_ORGANIZATION_ID}', 'Default organization', true)"
    )
    op.create_table(
        "organization_members",
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("added_by", sa.UUID(), nullable=True),
        _created(),
        _updated(),
        sa.CheckConstraint(
            "role IN ('owner', 'manager', 'finance', 'door')",
            name=op.f("ck_organization_members_role"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_organization_members_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_organization_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["added_by"], ["users.id"], name=op.f("fk_organization_members_added_by_users")
        ),
        sa.PrimaryKeyConstraint("organization_id", "user_id", name=op.f("pk_organization_members")),
    )
    op.create_index("ix_organization_members_user_id", "organization_members", ["user_id"])

    # venues and events: every existing row joins the default organization (a constant
    # default: no table rewrite)
    op.add_column(
        "venues", sa.Column("organization_id", sa.UUID(), server_default=DEFAULT, nullable=False)
    )
    op.create_foreign_key(
        op.f("fk_venues_organization_id_organizations"),
        "venues",
        "organizations",
        ["organization_id"],
        ["id"],
    )
    op.create_unique_constraint("uq_venues_id_organization_id", "venues", ["id", "organization_id"])
    op.create_index(
        "ix_venues_organization_created", "venues", ["organization_id", "created_at", "id"]
    )
    op.add_column(
        "events", sa.Column("organization_id", sa.UUID(), server_default=DEFAULT, nullable=False)
    )
    op.create_foreign_key(
        op.f("fk_events_organization_id_organizations"),
        "events",
        "organizations",
        ["organization_id"],
        ["id"],
    )
    op.create_foreign_key(
        "fk_events_venue_organization_venues",
        "events",
        "venues",
        ["venue_id", "organization_id"],
        ["id", "organization_id"],
    )
    op.create_index(
        "ix_events_organization_starts_at", "events", ["organization_id", "starts_at", "id"]
    )

    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(length=200), server_default="", nullable=False),
        sa.Column("event_types", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("disabled_reason", sa.String(length=300), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
        _created(),
        _updated(),
        sa.CheckConstraint(
            "status IN ('active', 'disabled')", name=op.f("ck_webhook_subscriptions_status")
        ),
        sa.CheckConstraint(
            "cardinality(event_types) > 0",
            name=op.f("ck_webhook_subscriptions_event_types_not_empty"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_webhook_subscriptions_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_webhook_subscriptions_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
    )
    op.create_index(
        "ix_webhook_subscriptions_organization_status",
        "webhook_subscriptions",
        ["organization_id", "status"],
    )
    op.create_table(
        "webhook_messages",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _created(),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_webhook_messages_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_messages")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_webhook_messages_dedupe_key")),
    )
    op.create_index(
        "ix_webhook_messages_organization_created",
        "webhook_messages",
        ["organization_id", "created_at"],
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("message_id", sa.UUID(), nullable=False),
        sa.Column("subscription_id", sa.UUID(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        _created(),
        _updated(),
        sa.CheckConstraint(
            "status IN ('pending', 'delivering', 'delivered', 'failed')",
            name=op.f("ck_webhook_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["webhook_messages.id"],
            name=op.f("fk_webhook_deliveries_message_id_webhook_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscriptions.id"],
            name=op.f("fk_webhook_deliveries_subscription_id_webhook_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("message_id", "subscription_id", name="uq_webhook_deliveries_message"),
    )
    op.create_index(
        "ix_webhook_deliveries_subscription_created",
        "webhook_deliveries",
        ["subscription_id", "created_at", "id"],
    )
    op.create_index(
        "ix_webhook_deliveries_pending",
        "webhook_deliveries",
        ["created_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("delivery_id", sa.UUID(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
        sa.UniqueConstraint("delivery_id", "attempt", name="uq_webhook_attempts_delivery_attempt"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("actor_user_id", sa.UUID(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=100), nullable=True),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        _created(),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_audit_log_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_user_id"], ["users.id"], name=op.f("fk_audit_log_actor_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(
        "ix_audit_log_organization_created",
        "audit_log",
        ["organization_id", "created_at", "id"],
    )
    for statement in _statements(FUNCTIONS):
        op.execute(statement)


def downgrade() -> None:
    for statement in DROP_FUNCTIONS.strip().splitlines():  # one statement a line
        op.execute(statement)
    op.drop_table("audit_log")
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_messages")
    op.drop_table("webhook_subscriptions")
    op.drop_index("ix_events_organization_starts_at", table_name="events")
    op.drop_constraint("fk_events_venue_organization_venues", "events", type_="foreignkey")
    op.drop_constraint(
        op.f("fk_events_organization_id_organizations"), "events", type_="foreignkey"
    )
    op.drop_column("events", "organization_id")
    op.drop_index("ix_venues_organization_created", table_name="venues")
    op.drop_constraint("uq_venues_id_organization_id", "venues", type_="unique")
    op.drop_constraint(
        op.f("fk_venues_organization_id_organizations"), "venues", type_="foreignkey"
    )
    op.drop_column("venues", "organization_id")
    op.drop_table("organization_members")
    op.drop_index("uq_organizations_one_default", table_name="organizations")
    op.drop_table("organizations")
