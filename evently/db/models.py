"""The core schema. Constraints make bad states impossible; Alembic migrations create it."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from evently.enums import (
    BookingChangeStatus,
    CheckinResult,
    MailStatus,
    OrganizationRole,
    PaymentAttemptStatus,
    QueueMode,
    Role,
    TicketStatus,
    WebhookDeliveryStatus,
    WebhookEventType,
    WebhookStatus,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

USER_ROLES = tuple(r.value for r in Role)  # the CHECK follows the enum (a new role: a migration)
EVENT_STATUSES = ("draft", "published", "cancelled", "completed")
BOOKING_STATUSES = ("held", "confirmed", "expired", "cancelled", "rejected")
BOOKING_CHANNELS = ("online", "comp", "box_office")  # issue 29: evently.enums.BookingChannel
WAITLIST_STATUSES = ("waiting", "offered", "accepted", "expired", "left")
PAYMENT_KINDS = ("charge", "refund", "partial_refund")
PAYMENT_STATUSES = ("succeeded", "failed")
PAYMENT_ATTEMPT_STATUSES = tuple(s.value for s in PaymentAttemptStatus)
TICKET_STATUSES = tuple(s.value for s in TicketStatus)
CHECKIN_RESULTS = tuple(r.value for r in CheckinResult)
MAIL_STATUSES = tuple(m.value for m in MailStatus)
ORGANIZATION_ROLES = tuple(r.value for r in OrganizationRole)
WEBHOOK_EVENT_TYPES = tuple(t.value for t in WebhookEventType)
WEBHOOK_STATUSES = tuple(s.value for s in WebhookStatus)
WEBHOOK_DELIVERY_STATUSES = tuple(s.value for s in WebhookDeliveryStatus)
BOOKING_CHANGE_STATUSES = tuple(s.value for s in BookingChangeStatus)
QUEUE_MODES = tuple(m.value for m in QueueMode)
ACCOUNT_TOKEN_PURPOSES = ("password_reset", "email_verification")  # issue 32
QUESTION_KINDS = ("text", "choice", "multiple_choice", "checkbox", "country")  # issue 32

#: the organization the migration created for the venues and events that existed before
#: organizations did; venues and events inserted without one belong to it (column default)
DEFAULT_ORGANIZATION_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


def _organization_fk() -> Mapped[uuid.UUID]:
    return mapped_column(
        ForeignKey("organizations.id"),
        server_default=text(f"'{DEFAULT_ORGANIZATION_ID}'::uuid"),
    )


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_in("role", USER_ROLES), name="role"),
        Index("uq_users_email_lower", func.lower(text("email")), unique=True),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    role: Mapped[str] = mapped_column(String(16), default="buyer", server_default="buyer")
    is_active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    # issue 32: when the current address was last proven (NULL again after an email change)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AccountToken(Base):
    """A password-reset or email-verification token mailed to an account (issue 32): only its
    SHA-256 is stored; single use (``used_at``), bound to the address it was mailed to."""

    __tablename__ = "account_tokens"
    __table_args__ = (CheckConstraint(_in("purpose", ACCOUNT_TOKEN_PURPOSES), name="purpose"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(24))
    email: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BookingAccessKey(Base):
    """A key that opens one guest booking without an account (issue 32): only its SHA-256 is
    stored; revocable. A booking with one is a guest booking (evently/booking_keys.py)."""

    __tablename__ = "booking_access_keys"

    id: Mapped[uuid.UUID] = _uuid_pk()
    booking_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = _created()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EventQuestion(Base):
    """A question an event's organizer asks per ticket or per booking (issue 32)."""

    __tablename__ = "event_questions"
    __table_args__ = (
        CheckConstraint(_in("kind", QUESTION_KINDS), name="kind"),
        CheckConstraint(_in("per", ("ticket", "booking")), name="per"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    options: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    per: Mapped[str] = mapped_column(String(8))
    ticket_type_ids: Mapped[list[uuid.UUID] | None] = mapped_column(ARRAY(UUID(as_uuid=True)))
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = _created()


class BookingAttendees(Base):
    """A booking's attendees (one per seat, in the booking's order) and per-booking answers."""

    __tablename__ = "booking_attendees"

    booking_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), primary_key=True
    )
    attendees: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default="[]"
    )
    answers: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class TicketTransfer(Base):
    """A transferred ticket (issue 32): the revoked one, its replacement, the new attendee."""

    __tablename__ = "ticket_transfers"

    old_ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    new_ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id"), unique=True)
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = _created()


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = _uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Venue(Base):
    __tablename__ = "venues"
    __table_args__ = (
        CheckConstraint("capacity > 0", name="capacity_positive"),
        # the target of events' (venue_id, organization_id) key: an event's venue is its own
        # organization's
        UniqueConstraint("id", "organization_id", name="uq_venues_id_organization_id"),
        Index("ix_venues_organization_created", "organization_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    organization_id: Mapped[uuid.UUID] = _organization_fk()
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(400))
    city: Mapped[str] = mapped_column(String(120), index=True)
    capacity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()


class Event(Base):
    """An event and its inventory counters.

    ``held`` counts seats in held bookings and in open waitlist offers; the check constraint
    ``available + held + sold = capacity`` makes a lost or doubled seat impossible to commit.
    """

    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint(_in("status", EVENT_STATUSES), name="status"),
        CheckConstraint("capacity > 0", name="capacity_positive"),
        CheckConstraint("available >= 0", name="available_nonnegative"),
        CheckConstraint("held >= 0", name="held_nonnegative"),
        CheckConstraint("sold >= 0", name="sold_nonnegative"),
        CheckConstraint("available + held + sold = capacity", name="inventory_balance"),
        CheckConstraint("waitlist_pool BETWEEN 0 AND held", name="waitlist_pool_in_held"),
        CheckConstraint("waitlist_waiting >= 0", name="waitlist_waiting_nonnegative"),
        CheckConstraint("ends_at > starts_at", name="ends_after_starts"),
        CheckConstraint("price >= 0", name="price_nonnegative"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint(_in("queue", QUEUE_MODES), name="queue"),
        Index("ix_events_status_starts_at", "status", "starts_at", "id"),
        ForeignKeyConstraint(
            ["venue_id", "organization_id"],
            ["venues.id", "venues.organization_id"],
            name="fk_events_venue_organization_venues",
        ),
        Index("ix_events_organization_starts_at", "organization_id", "starts_at", "id"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    # the organization of its venue, forever (no route moves an event or a venue): caches
    # and workflow search attributes rely on it never changing
    organization_id: Mapped[uuid.UUID] = _organization_fk()
    venue_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("venues.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    event_type: Mapped[str] = mapped_column(String(50), index=True)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    capacity: Mapped[int] = mapped_column(Integer)
    available: Mapped[int] = mapped_column(Integer)
    held: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sold: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # freed seats kept for the waitlist (part of ``held``), and entries in status "waiting"
    waitlist_pool: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    waitlist_waiting: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # tickets ever issued for the event: the next ticket's serial number (seat) is this + 1
    tickets_issued: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # ticket transfer (issue 32): allowed unless switched off, until the deadline (NULL: the
    # event's start)
    transfers_allowed: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=text("true")
    )
    transfer_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # attendees' answers (issue 32): changeable until then (NULL: no deadline)
    attendee_answers_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # issue 29: buyers may pay by bank transfer within this many days (NULL: they may not)
    bank_transfer_days: Mapped[int | None] = mapped_column(Integer)
    # issue 34: the seating plan (seating_plans, migration 0018seating; not mapped here) a
    # seated event sells; set only on a draft, by evently.seating.attach_plan (NULL: GA)
    seating_plan_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="draft", server_default="draft")
    # the waiting room (evently/waitingroom.py): on, off, or auto (queue only while saturated)
    queue: Mapped[str] = mapped_column(String(8), default="auto", server_default="auto")
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # who may refund through Evently (evently/refund_policy.py); issue 29
    refund_policy: Mapped[dict[str, Any]] = mapped_column(
        JSONB,
        default=lambda: {"mode": "until", "hours_before_start": 0},
        server_default=text("""'{"mode": "until", "hours_before_start": 0}'::jsonb"""),
    )

    # two keys reach venues (venue_id alone, and with organization_id): join on the id
    venue: Mapped[Venue] = relationship(
        lazy="raise", primaryjoin="Venue.id == foreign(Event.venue_id)"
    )
    # issue 31: the event's fees ([{"name", "amount" | "percent", "per", "passed_on",
    # "tax_rule_id"}]), NULL when none
    fees: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint(_in("status", BOOKING_STATUSES), name="status"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("amount >= 0", name="amount_nonnegative"),
        CheckConstraint(_in("channel", BOOKING_CHANNELS), name="channel"),
        Index("ix_bookings_user_created", "user_id", "created_at"),
        Index("ix_bookings_event_status", "event_id", "status"),
        Index("ix_bookings_event_created", "event_id", "created_at"),
        Index("uq_bookings_payment_reference", "payment_reference", unique=True),
        Index(
            "ix_bookings_held_expiry",
            "hold_expires_at",
            postgresql_where=text("status = 'held'"),
        ),
        Index(
            "ix_bookings_refund_failing",
            "refund_failing_since",
            postgresql_where=text("refund_failing_since IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    workflow_id: Mapped[str] = mapped_column(String(100), unique=True)
    hold_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    waitlist_entry_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("waitlist_entries.id"), index=True
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_by: Mapped[str | None] = mapped_column(String(200))
    end_reason: Mapped[str | None] = mapped_column(String(200))
    # the promo code whose use this booking counts (given back when it ends), and the
    # discount it gave (``amount`` is net of it)
    promo_code_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("promo_codes.id"))
    discount: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=0, server_default="0")
    # issue 29: sold online (card or free) or by the organizer (comp, box office), with the
    # staff member's note
    channel: Mapped[str] = mapped_column(String(16), default="online", server_default="online")
    note: Mapped[str | None] = mapped_column(String(500))
    # issue 35: a refund the provider refuses (retried by Temporal) shows here until one goes
    # through: the last refusal's code and since when the refund owed has been refused
    refund_failure: Mapped[str | None] = mapped_column(String(100))
    refund_failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    refund_refusals: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # issue 29, bank transfer (evently/bank_transfer.py): the reference the buyer writes on the
    # transfer (set only for a bank-transfer booking), and money that arrived after the seats
    # were gone (finance pays it back)
    payment_reference: Mapped[str | None] = mapped_column(String(20))
    refund_due: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # issue 31: the frozen inputs of its price breakdown (evently/pricing.py; NULL: no tax rule
    # and no fee), and the buyer's optional billing details (name, address, vat_id)
    price: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    billing: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class Payment(Base):
    """Charges and refunds recorded with the provider's ids; idempotency keys make retries safe."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(_in("kind", PAYMENT_KINDS), name="kind"),
        CheckConstraint(_in("status", PAYMENT_STATUSES), name="status"),
        CheckConstraint("amount >= 0", name="amount_nonnegative"),
        # one successful charge and at most one (whole) refund per booking; partial refunds
        # are one per change (their idempotency keys carry the change number)
        Index(
            "uq_payments_one_success_per_booking",
            "booking_id",
            "kind",
            unique=True,
            postgresql_where=text("status = 'succeeded' AND kind <> 'partial_refund'"),
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    provider_payment_id: Mapped[str] = mapped_column(String(100), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    payment_method: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    failure_code: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = _created()


class PaymentAttempt(Base):
    """Our own record of each charge attempt, written after the provider created the payment
    and before any money moves (evently/payments/provider.py): a retried activity confirms the
    payment it recorded instead of creating another, whatever the provider does with
    idempotency keys. A webhook finds its booking here by the provider's payment id."""

    __tablename__ = "payment_attempts"
    __table_args__ = (
        CheckConstraint(_in("status", PAYMENT_ATTEMPT_STATUSES), name="status"),
        CheckConstraint("attempt >= 1", name="attempt_positive"),
        Index("uq_payment_attempts_booking_attempt", "booking_id", "attempt", unique=True),
    )

    # charge_key(booking_id, attempt): the provider's idempotency key too
    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id"))
    attempt: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(String(32))
    provider_payment_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(32))
    payment_method: Mapped[str] = mapped_column(String(100))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    failure_code: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class ProcessedWebhookEvent(Base):
    __tablename__ = "processed_webhook_events"

    provider_event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    booking_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True)
    received_at: Mapped[datetime] = _created()


class QueueEntry(Base):
    """A buyer's place in an event's waiting room (the durable copy of the Redis line)."""

    __tablename__ = "queue_entries"
    __table_args__ = (
        CheckConstraint("position > 0", name="position_positive"),
        UniqueConstraint("event_id", "position", name="uq_queue_entries_event_position"),
    )

    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"), primary_key=True)
    # an account's user id, or a guest session's id (issue 32: no account, no reference)
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
    joined_at: Mapped[datetime] = _created()
    admitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WaitlistEntry(Base):
    __tablename__ = "waitlist_entries"
    __table_args__ = (
        CheckConstraint(_in("status", WAITLIST_STATUSES), name="status"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("offered_quantity >= 0", name="offered_nonnegative"),
        Index(
            "uq_waitlist_one_active_per_user",
            "event_id",
            "user_id",
            unique=True,
            postgresql_where=text("status IN ('waiting', 'offered')"),
        ),
        Index("ix_waitlist_event_status_created", "event_id", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="waiting", server_default="waiting")
    offered_quantity: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    offer_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    offer_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    booking_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    # issue 34: a seated event's entry may wait for one ticket type (its seat category at its
    # price); NULL: the default tickets, any seat
    ticket_type_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ticket_types.id"))


class Notification(Base):
    """A notice to a buyer, written in the transaction of the change it reports; also the
    outbox of buyer emails (``mail_*``: delivered by workflows/mail, evently/mail/outbox.py)."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_created", "user_id", "created_at"),
        CheckConstraint(_in("mail_status", MAIL_STATUSES), name="mail_status"),
        Index(
            "ix_notifications_mail_pending",
            "created_at",
            postgresql_where=text("mail_status = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(50))
    # a retried activity inserts the same key: ON CONFLICT DO NOTHING keeps one notice
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    booking_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    waitlist_entry_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[datetime] = _created()
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    mail_status: Mapped[str] = mapped_column(
        String(16), default="pending", server_default="pending"
    )
    mail_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # a delivery in progress holds the row until then (a crashed sender's claim lapses)
    mail_lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    mailed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    mail_error: Mapped[str | None] = mapped_column(String(500))


class Ticket(Base):
    """One admission per seat of a confirmed booking, issued in the confirm statement.

    The secret in the QR code is not stored: it is the platform's Ed25519 signature over
    (id, event, seat, issued_at), recomputed on demand (evently/tickets/store.py), so the
    database holds no bearer credential. ``checked_in_*`` is written once, by the first scan
    that reaches the server (evently/tickets/checkin.py)."""

    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint(_in("status", TICKET_STATUSES), name="status"),
        CheckConstraint("seat > 0", name="seat_positive"),
        UniqueConstraint("event_id", "seat", name="uq_tickets_event_seat"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id"), index=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))
    seat: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="valid", server_default="valid")
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_in_device: Mapped[str | None] = mapped_column(String(100))
    checkin_nonce: Mapped[str | None] = mapped_column(String(100))
    ticket_type_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ticket_types.id"))
    # promised to an accepted refund (0: the whole booking, n: its partial change n): the door
    # refuses it from then on (evently/booking_changes.py seals it; issue 29)
    refund_change: Mapped[int | None] = mapped_column(Integer)
    # the reserved seat it admits to (event_seats.seat_id, "<section>-<row>-<label>"); NULL:
    # general admission (issue 34, migration 0019seatlabels)
    seat_id: Mapped[str | None] = mapped_column(Text)


class CheckinScan(Base):
    """Every scan answered, keyed by the device's nonce: a replay gets the stored answer."""

    __tablename__ = "checkin_scans"
    __table_args__ = (
        CheckConstraint(_in("result", CHECKIN_RESULTS), name="result"),
        Index("ix_checkin_scans_event_received", "event_id", "received_at"),
    )

    nonce: Mapped[str] = mapped_column(String(100), primary_key=True)
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id"), index=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))
    device_id: Mapped[str] = mapped_column(String(100))
    scanned_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    # when the device scanned (an offline upload's own time), and when the server heard of it
    scanned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = _created()
    offline: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    result: Mapped[str] = mapped_column(String(32))
    # an offline device admitted someone the server refused: someone may be in twice
    conflict: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # the ticket's admission as this scan found it (the same answer for a replayed nonce)
    checked_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_in_device: Mapped[str | None] = mapped_column(String(100))


# ---- organizations, their webhooks and their audit log (issue 17) --------------------------


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = (
        Index(
            "uq_organizations_one_default",
            "is_default",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    # issue 29: where buyers paying by bank transfer send the money (evently/bank_transfer.py)
    bank_account_holder: Mapped[str | None] = mapped_column(String(200))
    bank_iban: Mapped[str | None] = mapped_column(String(34))
    bank_bic: Mapped[str | None] = mapped_column(String(11))
    # issue 31: what its invoices say about the seller
    legal_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    legal_address: Mapped[str] = mapped_column(String(400), default="", server_default="")
    vat_id: Mapped[str] = mapped_column(String(40), default="", server_default="")
    invoice_prefix: Mapped[str] = mapped_column(String(20), default="INV", server_default="INV")


class OrganizationMember(Base):
    __tablename__ = "organization_members"
    __table_args__ = (
        CheckConstraint(_in("role", ORGANIZATION_ROLES), name="role"),
        Index("ix_organization_members_user_id", "user_id"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16))
    added_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    user: Mapped[User] = relationship(lazy="raise", foreign_keys=[user_id])


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"
    __table_args__ = (
        CheckConstraint(_in("status", WEBHOOK_STATUSES), name="status"),
        CheckConstraint("cardinality(event_types) > 0", name="event_types_not_empty"),
        Index("ix_webhook_subscriptions_organization_status", "organization_id", "status"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="", server_default="")
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    # Standard Webhooks signing secret, "whsec_" + base64 of 32 random bytes
    secret: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class WebhookMessage(Base):
    """The outbox: one row per organizer-visible change, written by triggers in the change's
    own transaction (migration 0006orgs), only while the organization has an active
    subscription to its type. Its id is the message's stable ``webhook-id`` (``msg_<hex>``)."""

    __tablename__ = "webhook_messages"
    __table_args__ = (
        Index("ix_webhook_messages_organization_created", "organization_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(40))
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()


class WebhookDelivery(Base):
    """One message to one subscription, and where its delivery stands. A redelivery asked for
    by an owner (issue 30) is another row of the same message and subscription, naming the
    delivery it repeats (``redelivery_of``); the outbox writes one original per pair."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(_in("status", WEBHOOK_DELIVERY_STATUSES), name="status"),
        Index(
            "uq_webhook_deliveries_message",
            "message_id",
            "subscription_id",
            unique=True,
            postgresql_where=text("redelivery_of IS NULL"),
        ),
        Index("ix_webhook_deliveries_subscription_created", "subscription_id", "created_at", "id"),
        # the relay's queue: small, whatever the size of the log
        Index(
            "ix_webhook_deliveries_pending",
            "created_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_messages.id", ondelete="CASCADE")
    )
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    # issue 30: a redelivery on demand (migration 0017redeliver); the key makes the request
    # idempotent ("<original id>:<Idempotency-Key>")
    redelivery_of: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    redelivery_key: Mapped[str | None] = mapped_column(String(200), unique=True)

    message: Mapped[WebhookMessage] = relationship(lazy="raise")


class WebhookAttempt(Base):
    """The delivery log: one row per HTTP attempt."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        UniqueConstraint("delivery_id", "attempt", name="uq_webhook_attempts_delivery_attempt"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # the answer's headers (issue 28: never its body); None when there was no answer
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSONB)


class AuditEntry(Base):
    """Who did what to which of an organization's things, when (written in the change's
    transaction; readable by the organization's owners)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_organization_created", "organization_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    # "user:<id>" (a member), "admin:<id>" (the platform admin), "system:<what>"
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[datetime] = _created()


__all__ = [
    "AuditEntry",
    "Base",
    "Booking",
    "CheckinScan",
    "Event",
    "Notification",
    "Organization",
    "OrganizationMember",
    "Payment",
    "ProcessedWebhookEvent",
    "RefreshToken",
    "Ticket",
    "User",
    "Venue",
    "WaitlistEntry",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookMessage",
    "WebhookSubscription",
]


# ---- ticket types, booking lines, promo codes (issue 15; migration 0008tickettypes) ---------


class TicketType(Base):
    """What an event sells. The event's ``capacity`` is the shared quota; ``capacity`` here is
    an optional cap of the type's own (``held + sold <= capacity``). Exactly one default type
    per event (created by a trigger on events insert), which follows the event's price."""

    __tablename__ = "ticket_types"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_nonnegative"),
        CheckConstraint("held >= 0", name="held_nonnegative"),
        CheckConstraint("sold >= 0", name="sold_nonnegative"),
        CheckConstraint(
            "capacity IS NULL OR (capacity > 0 AND held + sold <= capacity)", name="within_cap"
        ),
        CheckConstraint(
            "max_per_booking IS NULL OR max_per_booking > 0", name="max_per_booking_positive"
        ),
        CheckConstraint(
            "sales_start IS NULL OR sales_end IS NULL OR sales_end > sales_start",
            name="sales_window",
        ),
        CheckConstraint("NOT is_default OR capacity IS NULL", name="default_uncapped"),
        Index("ix_ticket_types_event_position", "event_id", "position", "created_at"),
        Index(
            "uq_ticket_types_event_default",
            "event_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    capacity: Mapped[int | None] = mapped_column(Integer)
    held: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sold: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sales_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sales_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    max_per_booking: Mapped[int | None] = mapped_column(Integer)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    # issue 31: its organization's tax rule, or none
    tax_rule_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tax_rules.id"))


class BookingLine(Base):
    """One ticket type of a booking: quantity, unit price and discount frozen at hold time;
    ``cancelled`` seats of it were given back later (partial cancellation)."""

    __tablename__ = "booking_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("cancelled BETWEEN 0 AND quantity", name="cancelled_range"),
        CheckConstraint("discount >= 0", name="discount_nonnegative"),
        Index("ix_booking_lines_ticket_type", "ticket_type_id"),
    )

    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id"), primary_key=True)
    ticket_type_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ticket_types.id"), primary_key=True
    )
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    discount: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=0, server_default="0")
    cancelled: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class PromoCode(Base):
    """A discount code of one event; ``uses`` is counted by the reserve statement and given
    back when a booking that used it ends (``uses <= max_uses`` always)."""

    __tablename__ = "promo_codes"
    __table_args__ = (
        CheckConstraint("(percent_off IS NULL) <> (amount_off IS NULL)", name="one_kind"),
        CheckConstraint(
            "percent_off IS NULL OR (percent_off > 0 AND percent_off <= 100)",
            name="percent_range",
        ),
        CheckConstraint("amount_off IS NULL OR amount_off > 0", name="amount_positive"),
        CheckConstraint("max_uses > 0", name="max_uses_positive"),
        CheckConstraint("uses BETWEEN 0 AND max_uses", name="uses_range"),
        CheckConstraint(
            "valid_from IS NULL OR valid_until IS NULL OR valid_until > valid_from",
            name="valid_window",
        ),
        UniqueConstraint("event_id", "code", name="uq_promo_codes_event_code"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))
    code: Mapped[str] = mapped_column(String(64))  # stored upper-case
    percent_off: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    amount_off: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    max_uses: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ticket_type_ids: Mapped[list[uuid.UUID] | None] = mapped_column(ARRAY(UUID(as_uuid=True)))
    unlocks_hidden: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    created_at: Mapped[datetime] = _created()


class BookingChange(Base):
    """A partial cancellation of a confirmed booking, numbered per booking: requested → refunded
    (its part refunded, keyed by booking and number) → done (its seats released, exactly those
    tickets revoked); ``void`` when the booking ended meanwhile (a whole cancellation refunds
    what is left)."""

    __tablename__ = "booking_changes"
    __table_args__ = (
        CheckConstraint("change_no > 0", name="change_no_positive"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("refund_amount >= 0", name="refund_nonnegative"),
        CheckConstraint(_in("status", BOOKING_CHANGE_STATUSES), name="status"),
    )

    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id"), primary_key=True)
    change_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    lines: Mapped[Any] = mapped_column(JSONB)  # [{"ticket_type_id": ..., "quantity": n}]
    quantity: Mapped[int] = mapped_column(Integer)
    refund_amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    status: Mapped[str] = mapped_column(
        String(16),
        default=BookingChangeStatus.REQUESTED.value,
        server_default=BookingChangeStatus.REQUESTED.value,
    )
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


# ---- money: tax rules, invoices and credit notes (issue 31; migration 0017money) -------------


class TaxRule(Base):
    """An organization's tax rate. A change applies to bookings held after it: a booking
    freezes the rates it was priced with (``bookings.price``)."""

    __tablename__ = "tax_rules"
    __table_args__ = (
        CheckConstraint("rate >= 0 AND rate <= 100", name="rate_range"),
        Index("ix_tax_rules_organization_id", "organization_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(100))
    rate: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    price_includes_tax: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=text("true")
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class InvoiceCounter(Base):
    """The next invoice number of an organization in a year: bumped (``n = n + 1 RETURNING
    n``) in the confirmation's own transaction, so numbers have no gap and no duplicate."""

    __tablename__ = "invoice_counters"
    __table_args__ = (CheckConstraint("n > 0", name="n_positive"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class Invoice(Base):
    """An invoice (on confirmation) or a credit note (a refund or cancelled lines), with the
    seller's and buyer's details and the booking's price as they were when it was issued."""

    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("kind IN ('invoice', 'credit_note')", name="kind"),
        CheckConstraint("total >= 0", name="total_nonnegative"),
        UniqueConstraint("organization_id", "year", "n", name="uq_invoices_organization_year_n"),
        UniqueConstraint("booking_id", "source", name="uq_invoices_booking_source"),
        Index("ix_invoices_organization_created", "organization_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id"))
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))  # confirm | change-<n> | cancel
    refers_to: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"))
    year: Mapped[int] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(60))
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    price: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # the booking's frozen inputs
    seats: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # seats it covers per type
    seller: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    buyer: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()
