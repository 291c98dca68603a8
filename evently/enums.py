"""Every status and kind the platform stores or exchanges, one ``StrEnum`` each.

A member *is* its string (``BookingStatus.HELD == "held"``), so members go straight into SQL
parameters, JSON and Temporal payloads; the database CHECK constraints are generated from these
(evently/db/models.py). Light module: workflow code imports it.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    BUYER = "buyer"
    SUPPORT = "support"
    ADMIN = "admin"
    DOOR = "door"  # scans tickets at the entrance (POST /checkin/redeem); made with the CLI


class EventStatus(StrEnum):
    """draft → published → cancelled | completed."""

    DRAFT = "draft"
    PUBLISHED = "published"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class QueueMode(StrEnum):
    """An event's waiting room: ``auto`` queues only while the reserve path is saturated."""

    ON = "on"
    OFF = "off"
    AUTO = "auto"


class QueueState(StrEnum):
    """A queue ticket: waiting → admitted | sold_out (back to waiting if seats come back);
    expired once its admission token's time ran out."""

    WAITING = "waiting"
    ADMITTED = "admitted"
    SOLD_OUT = "sold_out"
    EXPIRED = "expired"


class BookingStatus(StrEnum):
    """held → confirmed | expired | cancelled; rejected when the reserve found no seats.
    ``pending`` exists only inside a booking workflow before its reserve step answered."""

    PENDING = "pending"
    HELD = "held"
    CONFIRMED = "confirmed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def is_active(self) -> bool:
        return self in (BookingStatus.HELD, BookingStatus.CONFIRMED)

    @property
    def is_final(self) -> bool:
        return self in (BookingStatus.EXPIRED, BookingStatus.CANCELLED, BookingStatus.REJECTED)


STORED_BOOKING_STATUSES = tuple(s for s in BookingStatus if s is not BookingStatus.PENDING)


class BookingChangeStatus(StrEnum):
    """A partial cancellation (``booking_changes``): requested → refunded (its part refunded)
    → done (its seats released); ``void`` when the booking ended meanwhile (a whole
    cancellation refunds what is left)."""

    REQUESTED = "requested"
    REFUNDED = "refunded"
    DONE = "done"
    VOID = "void"


class WaitlistStatus(StrEnum):
    """waiting → offered → accepted | expired | left (left also from waiting)."""

    WAITING = "waiting"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    EXPIRED = "expired"
    LEFT = "left"


class PaymentKind(StrEnum):
    CHARGE = "charge"
    REFUND = "refund"  # the whole booking (what is left of it after partial refunds)
    PARTIAL_REFUND = "partial_refund"  # cancelled lines of a booking that stays confirmed


class PaymentStatus(StrEnum):
    """Where a charge or refund stands at the provider once our call returns. A ``payments``
    row records only the final two (``succeeded``, ``failed``)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # the buyer must act (3-D Secure): hand them client_secret; the outcome arrives by webhook
    REQUIRES_ACTION = "requires_action"
    # accepted, outcome pending (a refund in flight, an asynchronous payment method): webhook
    PROCESSING = "processing"
    # created by prepare_charge, no money moved yet: confirm_charge moves it
    REQUIRES_CONFIRMATION = "requires_confirmation"

    @property
    def is_final(self) -> bool:
        return self in (PaymentStatus.SUCCEEDED, PaymentStatus.FAILED)


class PaymentAttemptStatus(StrEnum):
    """One charge attempt at the provider (``payment_attempts``): prepared (its id recorded
    before any money moves) → succeeded | failed, or waiting for the buyer (3-D Secure) or the
    provider (processing) until a webhook or a later attempt settles it."""

    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (PaymentAttemptStatus.SUCCEEDED, PaymentAttemptStatus.FAILED)


class NotificationKind(StrEnum):
    BOOKING_CONFIRMED = "booking_confirmed"
    HOLD_EXPIRED = "hold_expired"
    BOOKING_CANCELLED = "booking_cancelled"
    REFUND_ISSUED = "refund_issued"
    EVENT_CANCELLED = "event_cancelled"
    WAITLIST_OFFER = "waitlist_offer"
    WAITLIST_OFFER_EXPIRING = "waitlist_offer_expiring"
    WAITLIST_OFFER_EXPIRED = "waitlist_offer_expired"
    # sign-up (issue 28): the answer is the same for a new and a taken email; the mail differs
    ACCOUNT_WELCOME = "account_welcome"
    ACCOUNT_EXISTS = "account_exists"
    # account recovery (issue 32): the reset link, mailed only to an existing account
    PASSWORD_RESET = "password_reset"
    # ticket transfer (issue 32): the new ticket, mailed to its new attendee
    TICKET_TRANSFERRED = "ticket_transferred"
    # issue 33: a day before the event, once per ticket, to its attendee (else the buyer)
    EVENT_REMINDER = "event_reminder"
    # bank transfer (issue 29): a day before the transfer window ends, once per booking
    TRANSFER_REMINDER = "transfer_reminder"
    # a fresh verification link: asked for again, or mailed to a changed address (issue 32)
    EMAIL_VERIFICATION = "email_verification"


class ReserveOutcome(StrEnum):
    """Why a reserve step refused (``reason`` of a rejected reservation)."""

    SOLD_OUT = "sold_out"
    EVENT_NOT_ON_SALE = "event_not_on_sale"
    EVENT_NOT_FOUND = "event_not_found"
    OFFER_NOT_OPEN = "offer_not_open"
    UNAVAILABLE = "unavailable"  # Postgres unreachable for the whole reserve window
    # ticket types and promo codes (issue 15): a line or the code refused, nothing taken
    TICKET_TYPE_SOLD_OUT = "ticket_type_sold_out"  # its own cap reached; the event has seats
    TICKET_TYPE_NOT_FOUND = "ticket_type_not_found"  # not this event's, or hidden without code
    SALES_CLOSED = "sales_closed"  # outside the type's sales window
    TOO_MANY_OF_TYPE = "too_many_of_type"  # above the type's max_per_booking
    PROMO_CODE_UNKNOWN = "promo_code_unknown"
    PROMO_CODE_EXPIRED = "promo_code_expired"  # outside valid_from..valid_until
    PROMO_CODE_USED_UP = "promo_code_used_up"  # max_uses reached
    PROMO_CODE_NOT_APPLICABLE = "promo_code_not_applicable"  # none of the lines' types
    # reserved seating (issue 34): a named seat not free, or no block of free seats for a line
    SEATS_TAKEN = "seats_taken"


class PayOutcome(StrEnum):
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    HOLD_EXPIRED = "hold_expired"
    NOT_HELD = "not_held"
    # the payment service did not answer before the hold ended (the hold ends at its window;
    # a payment that went through after all follows the late-payment rule)
    UNAVAILABLE = "unavailable"
    # the charge waits for the buyer (3-D Secure, with a client_secret) or for the provider;
    # the hold keeps running and the outcome arrives by webhook
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"


class LateSettlement(StrEnum):
    """What a payment that arrived after the hold ended led to."""

    CONFIRMED = "confirmed"
    HELD = "held"
    REFUND = "refund"
    UNKNOWN = "unknown"


# ---- tickets, check-in and mail (issue 16) ----------------------------------------------------


class TicketStatus(StrEnum):
    """valid → revoked (its booking was cancelled or refunded). Being checked in is not a
    status: ``checked_in_at`` is set once, by the first scan that reaches the server."""

    VALID = "valid"
    REVOKED = "revoked"


class CheckinResult(StrEnum):
    """What one scan (one nonce) was answered; a replay of the nonce gets the same answer."""

    ADMITTED = "admitted"
    ALREADY_CHECKED_IN = "already_checked_in"
    TICKET_REVOKED = "ticket_revoked"
    WRONG_EVENT = "wrong_event"


class MailStatus(StrEnum):
    """A notification's email: pending → sent | failed (refused for good) | skipped (no mail
    for this kind, or nothing left to send, e.g. a confirmation whose tickets were revoked)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


# ---- organizations (issue 17) ----------------------------------------------------------------


class OrganizationRole(StrEnum):
    """A member's role in one organization (the platform roles are ``Role``).

    owner: everything, members, webhooks, the audit log; manager: venues and events;
    finance: bookings, attendees, exports, analytics, refunds; door: check-in only."""

    OWNER = "owner"
    MANAGER = "manager"
    FINANCE = "finance"
    DOOR = "door"


class WebhookEventType(StrEnum):
    """What an organization can subscribe to (``type`` of each delivered message)."""

    BOOKING_CONFIRMED = "booking.confirmed"
    BOOKING_CANCELLED = "booking.cancelled"
    BOOKING_REFUNDED = "booking.refunded"
    EVENT_SOLD_OUT = "event.sold_out"
    EVENT_CANCELLED = "event.cancelled"
    WAITLIST_OFFERED = "waitlist.offered"


class WebhookStatus(StrEnum):
    """active → disabled (a 410 from the receiver, or its owner) → active (its owner)."""

    ACTIVE = "active"
    DISABLED = "disabled"


class WebhookDeliveryStatus(StrEnum):
    """pending (written with the change) → delivering (its workflow runs) → delivered |
    failed (gave up after the retry horizon, a 410, or the subscription was disabled)."""

    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"


# ---- issue 29: bookings without a card charge ------------------------------------------------


class BookingChannel(StrEnum):
    """How a booking was sold: ``online`` (the buyer's own reserve, paid by card or free), or
    an organizer's order (``comp``: a guest-list ticket, ``box_office``: paid at the door)."""

    ONLINE = "online"
    COMP = "comp"
    BOX_OFFICE = "box_office"


class NoChargeProvider(StrEnum):
    """The ``payments.provider`` of a charge that went through no payment provider: a 0.00
    booking (``free``), a comp (0.00) or a box-office sale (the full amount, paid at the
    door). Refunding one calls no provider either."""

    FREE = "free"
    COMP = "comp"
    BOX_OFFICE = "box_office"
    # issue 29: a bank transfer finance marked as arrived (refunds: paid back by finance)
    BANK_TRANSFER = "bank_transfer"


class ShownBookingStatus(StrEnum):
    """A booking's status as buyers and staff see it (issue 29): the stored statuses, with a
    held bank-transfer booking shown ``awaiting_transfer`` and an ended one whose late transfer
    finance must pay back shown ``refund_due`` (evently/bank_transfer.py)."""

    HELD = "held"
    AWAITING_TRANSFER = "awaiting_transfer"
    CONFIRMED = "confirmed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REFUND_DUE = "refund_due"
    REJECTED = "rejected"
