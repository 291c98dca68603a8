"""Buyer emails, rendered from templates into ``EmailMessage`` objects ready for SMTP.

Each mail is a small dataclass (what happened) turned into a text part, an HTML alternative
and, for a confirmation, the tickets PDF, the invoice PDF and the event's ``.ics`` (a refund:
its credit note PDF). The ``Message-ID`` is made
from the notification id, so every retry of the same notification is recognisably the same
message (``<{notification_id}@{domain}>``) and a receiver or test can de-duplicate on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from typing import ClassVar

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from evently.invoices import Printable
from evently.tickets.render import EventView, TicketView, event_ics, tickets_pdf


@dataclass(frozen=True, slots=True)
class BookingConfirmed:
    template: ClassVar[str] = "booking_confirmed"
    event: EventView
    booking_id: uuid.UUID
    buyer_name: str
    tickets: Sequence[TicketView]
    amount: Decimal
    currency: str
    booking_url: str | None = None
    invoice: Printable | None = None  # issue 31: attached as <number>.pdf

    @property
    def subject(self) -> str:
        n = len(self.tickets)
        return f"Your {'ticket' if n == 1 else f'{n} tickets'} for {self.event.name}"


@dataclass(frozen=True, slots=True)
class TicketTransferred:
    """Issue 32: a ticket transferred to the recipient (the new ticket attached)."""

    template: ClassVar[str] = "ticket_transferred"
    event: EventView
    booking_id: uuid.UUID
    buyer_name: str
    tickets: Sequence[TicketView]

    @property
    def subject(self) -> str:
        return f"Your ticket for {self.event.name}"


@dataclass(frozen=True, slots=True)
class EventReminder(TicketTransferred):
    """Issue 33: the event is about to start (a day before); the ticket attached again. The
    transferred ticket's mail with another opening and subject."""

    template: ClassVar[str] = "event_reminder"

    @property
    def subject(self) -> str:
        return f"Reminder: {self.event.name} is coming up"


@dataclass(frozen=True, slots=True)
class HoldExpired:
    template: ClassVar[str] = "hold_expired"
    event: EventView
    booking_id: uuid.UUID
    buyer_name: str
    quantity: int
    expired_at: datetime
    event_url: str | None = None

    @property
    def subject(self) -> str:
        return f"Your hold for {self.event.name} has expired"


@dataclass(frozen=True, slots=True)
class TransferReminder:
    """Issue 29: a bank-transfer booking's window ends in a day; the transfer details again."""

    template: ClassVar[str] = "transfer_reminder"
    event: EventView
    booking_id: uuid.UUID
    buyer_name: str
    amount: Decimal
    currency: str
    payment_reference: str
    pay_by: datetime
    account_holder: str
    iban: str
    bic: str | None = None

    @property
    def subject(self) -> str:
        return f"Reminder: your bank transfer for {self.event.name}"


@dataclass(frozen=True, slots=True)
class WaitlistOffer:
    template: ClassVar[str] = "waitlist_offer"
    event: EventView
    buyer_name: str
    quantity: int
    accept_url: str
    expires_at: datetime

    @property
    def subject(self) -> str:
        seats = "A seat is" if self.quantity == 1 else f"{self.quantity} seats are"
        return f"{seats} waiting for you: {self.event.name}"


@dataclass(frozen=True, slots=True)
class RefundIssued:
    template: ClassVar[str] = "refund_issued"
    event: EventView
    booking_id: uuid.UUID
    buyer_name: str
    amount: Decimal
    currency: str
    credit_note: Printable | None = None  # issue 31: the refund's, attached as <number>.pdf

    @property
    def subject(self) -> str:
        return f"Refund issued: {self.event.name}"


@dataclass(frozen=True, slots=True)
class EventCancelled:
    template: ClassVar[str] = "event_cancelled"
    event: EventView
    booking_id: uuid.UUID
    buyer_name: str
    refund_amount: Decimal | None = None
    currency: str | None = None

    def __post_init__(self) -> None:
        if self.refund_amount is not None and not self.currency:
            raise ValueError("a refund amount needs its currency")

    @property
    def subject(self) -> str:
        return f"Cancelled: {self.event.name}"


@dataclass(frozen=True, slots=True)
class AccountWelcome:
    """Sign-up with a new address: the account exists, log in to use it."""

    template: ClassVar[str] = "account_welcome"
    buyer_name: str
    login_url: str
    verify_url: str | None = None  # the address's verification link (issue 32)

    @property
    def subject(self) -> str:
        return "Welcome to Evently"


@dataclass(frozen=True, slots=True)
class AccountExists:
    """Sign-up with an address that already has an account: nothing was created; log in, or
    reset the password. The sign-up answer itself does not say which of the two happened."""

    template: ClassVar[str] = "account_exists"
    buyer_name: str
    login_url: str
    reset_url: str | None = None  # the "forgot your password" page (issue 32)

    @property
    def subject(self) -> str:
        return "You already have an Evently account"


@dataclass(frozen=True, slots=True)
class PasswordReset:
    """A reset was asked for the account (issue 32): the single-use link and its life."""

    template: ClassVar[str] = "password_reset"
    buyer_name: str
    reset_url: str
    valid_minutes: int

    @property
    def subject(self) -> str:
        return "Reset your Evently password"


@dataclass(frozen=True, slots=True)
class EmailVerification:
    """A fresh link to prove the account's address (asked for again, or the address changed)."""

    template: ClassVar[str] = "email_verification"
    buyer_name: str
    verify_url: str
    valid_hours: int

    @property
    def subject(self) -> str:
        return "Confirm your email address"


AccountMail = AccountWelcome | AccountExists | PasswordReset | EmailVerification
Mail = (
    BookingConfirmed
    | HoldExpired
    | WaitlistOffer
    | RefundIssued
    | EventCancelled
    | AccountMail
    | TicketTransferred
    | EventReminder
    | TransferReminder
)


def money(amount: Decimal, currency: str) -> str:
    return f"{amount:,.2f} {currency.upper()}"


def local_time(moment: datetime, event: EventView) -> str:
    """A moment shown in the event's zone, e.g. ``Fri 04 Dec 2026, 19:30 (Europe/Berlin)``."""
    return f"{event.local(moment):%a %d %b %Y, %H:%M} ({event.timezone})"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("evently.mail", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["money"] = money
    env.globals["local_time"] = local_time
    return env


def render_bodies(mail: Mail) -> tuple[str, str]:
    """The text part and the HTML alternative."""
    env = environment()
    context = {"mail": mail, "event": getattr(mail, "event", None)}
    text = env.get_template(f"{mail.template}.txt").render(context)
    html = env.get_template(f"{mail.template}.html").render(context)
    return text, html


def message_id(notification_id: uuid.UUID | str, domain: str) -> str:
    return f"<{notification_id}@{domain}>"


def _domain_of(sender: str) -> str:
    _, addr = parseaddr(sender)
    if "@" not in addr:
        raise ValueError(f"mail sender {sender!r} has no domain; pass domain= explicitly")
    return addr.rsplit("@", 1)[1]


def build_message(
    mail: Mail,
    *,
    notification_id: uuid.UUID | str,
    to: str | Address,
    sender: str,
    date: datetime | None = None,
    domain: str | None = None,
) -> EmailMessage:
    """The whole message for one notification.

    ``sender`` is ``EVENTLY_MAIL_FROM`` (``"Evently <tickets@example.com>"``); ``date`` should
    be when the notification was written, so a retried send carries the same headers;
    ``domain`` (of the Message-ID) defaults to the sender's.
    """
    domain = domain or _domain_of(sender)
    date = date or datetime.now(UTC)
    text, html = render_bodies(mail)

    msg = EmailMessage()
    msg["Message-ID"] = message_id(notification_id, domain)
    msg["Date"] = format_datetime(date.astimezone(UTC))
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = mail.subject
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies, please
    msg["X-Evently-Notification-Id"] = str(notification_id)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")

    if isinstance(mail, BookingConfirmed | TicketTransferred):  # a reminder too
        msg.add_attachment(
            tickets_pdf(mail.event, mail.tickets, created_at=date),
            maintype="application",
            subtype="pdf",
            filename=f"tickets-{mail.booking_id}.pdf",
        )
    document = (
        mail.invoice
        if isinstance(mail, BookingConfirmed)
        else mail.credit_note
        if isinstance(mail, RefundIssued)
        else None
    )
    if document is not None:
        msg.add_attachment(
            document.pdf(), maintype="application", subtype="pdf", filename=document.filename
        )
    if isinstance(mail, BookingConfirmed | EventCancelled | TicketTransferred):
        event = mail.event
        if isinstance(mail, EventCancelled) and not event.cancelled:
            # same UID, STATUS:CANCELLED and a higher SEQUENCE: calendars drop their entry
            event = replace(event, cancelled=True, sequence=event.sequence + 1)
        msg.add_attachment(
            event_ics(event, dtstamp=date),
            maintype="text",
            subtype="calendar",
            filename="event.ics",
            params={"method": "PUBLISH"},
        )
    return msg
