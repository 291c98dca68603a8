"""The notifications table is the outbox of buyer email.

Every notice is written in the transaction of the change it reports (evently/inventory/seats.py,
evently/waitlist.py, evently/events.py, evently/payments/records.py) with ``mail_status =
'pending'``; a statement trigger NOTIFYs ``evently_outbox`` at commit. The mail workflow
(workflows/mail) asks :func:`due` for pending rows and delivers each with
activities/mail.py: :func:`claim` (a lease, so two senders never send one notice at once) →
:func:`compose` → SMTP → :func:`finish` (``sent``), or :func:`release` on a temporary failure
(Temporal retries with backoff). The Message-ID is the notification id, so a message sent
again after a crash between the SMTP reply and :func:`finish` is the same message to every
receiver that de-duplicates (the dev server keeps one file per Message-ID).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.headerregistry import Address
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from evently import account_tokens, booking_keys, invoices
from evently.enums import MailStatus, NotificationKind
from evently.mail.render import (
    AccountExists,
    AccountWelcome,
    BookingConfirmed,
    EmailVerification,
    EventCancelled,
    EventReminder,
    HoldExpired,
    Mail,
    PasswordReset,
    RefundIssued,
    TicketTransferred,
    TransferReminder,
    WaitlistOffer,
)
from evently.settings import Settings
from evently.tickets import store
from evently.tickets.render import EventView

CHANNEL = "evently_outbox"

#: kinds that become an email; the others (booking_cancelled: the buyer did it, or a refund
#: mail follows; waitlist reminders and lapses) stay in GET /users/notifications only
MAILED_KINDS = frozenset(
    {
        NotificationKind.BOOKING_CONFIRMED,
        NotificationKind.HOLD_EXPIRED,
        NotificationKind.WAITLIST_OFFER,
        NotificationKind.REFUND_ISSUED,
        NotificationKind.EVENT_CANCELLED,
        NotificationKind.ACCOUNT_WELCOME,
        NotificationKind.ACCOUNT_EXISTS,
        NotificationKind.PASSWORD_RESET,
        NotificationKind.TICKET_TRANSFERRED,
        NotificationKind.EVENT_REMINDER,
        NotificationKind.TRANSFER_REMINDER,
        NotificationKind.EMAIL_VERIFICATION,
    }
)


# ---- the queue --------------------------------------------------------------------------------

_DUE = text(
    """
SELECT id FROM notifications
WHERE mail_status = 'pending' AND (mail_lease_until IS NULL OR mail_lease_until < now())
  AND NOT (id = ANY(CAST(:exclude AS uuid[])))
ORDER BY created_at LIMIT :limit
"""
)


async def due(conn: AsyncConnection, *, exclude: list[uuid.UUID], limit: int) -> list[uuid.UUID]:
    """Pending notices nobody is delivering, oldest first (the partial index on pending)."""
    rows = await conn.execute(_DUE, {"exclude": exclude, "limit": limit})
    return [r.id for r in rows]


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    kind: str
    user_id: uuid.UUID
    booking_id: uuid.UUID | None
    waitlist_entry_id: uuid.UUID | None
    payload: dict[str, Any]
    created_at: datetime
    attempts: int


_CLAIM = text(
    """
UPDATE notifications SET mail_attempts = mail_attempts + 1,
       mail_lease_until = now() + make_interval(secs => :lease)
WHERE id = :id AND mail_status = 'pending'
  AND (mail_lease_until IS NULL OR mail_lease_until < now())
RETURNING id, kind, user_id, booking_id, waitlist_entry_id, payload, created_at, mail_attempts
"""
)


async def claim(
    conn: AsyncConnection, notification_id: uuid.UUID, *, lease_seconds: float
) -> Claimed | None:
    """Take the notice for one delivery attempt. None: not pending, or another attempt holds
    its lease (see :func:`status`)."""
    row = (await conn.execute(_CLAIM, {"id": notification_id, "lease": lease_seconds})).first()
    if row is None:
        return None
    return Claimed(
        id=row.id,
        kind=row.kind,
        user_id=row.user_id,
        booking_id=row.booking_id,
        waitlist_entry_id=row.waitlist_entry_id,
        payload=dict(row.payload or {}),
        created_at=row.created_at,
        attempts=row.mail_attempts,
    )


async def status(conn: AsyncConnection, notification_id: uuid.UUID) -> MailStatus | None:
    found = await conn.scalar(
        text("SELECT mail_status FROM notifications WHERE id = :id"), {"id": notification_id}
    )
    return MailStatus(found) if found is not None else None


async def finish(
    conn: AsyncConnection, notification_id: uuid.UUID, outcome: MailStatus, error: str | None = None
) -> None:
    """sent, failed (refused for good) or skipped: final."""
    await conn.execute(
        text(
            """UPDATE notifications SET mail_status = CAST(:status AS text),
               mail_lease_until = NULL,
               mailed_at = CASE WHEN CAST(:status AS text) = 'sent' THEN now() ELSE mailed_at END,
               mail_error = :error
               WHERE id = :id AND mail_status = 'pending'"""
        ),
        {"id": notification_id, "status": str(outcome), "error": error[:500] if error else None},
    )


async def release(conn: AsyncConnection, notification_id: uuid.UUID, error: str) -> None:
    """A temporary failure: give the lease back (the next attempt may start at once)."""
    await conn.execute(
        text(
            """UPDATE notifications SET mail_lease_until = NULL, mail_error = :error
               WHERE id = :id AND mail_status = 'pending'"""
        ),
        {"id": notification_id, "error": error[:500]},
    )


# ---- what the buyer reads ----------------------------------------------------------------------


@dataclass(frozen=True)
class Composed:
    mail: Mail
    to: str | Address


def _recipient(full_name: str | None, email: str) -> str | Address:
    """``"Ada Lovelace" <ada@…>``, quoted as needed; the bare address if the name will not go."""
    name = (full_name or "").strip()
    if not name:
        return email
    try:
        local, _, domain = email.rpartition("@")
        return Address(display_name=name, username=local, domain=domain)
    except (ValueError, TypeError):
        return email


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class Later:
    """Not yet: something the mail carries is about to exist (a refund's credit note: the
    refund is recorded before the seats are released, and the release issues the note). The
    sender gives the lease back and tries again after a backoff."""

    reason: str


#: a refund mail waits this long at most for its credit note, then goes without it
CREDIT_NOTE_WAIT_SECONDS = 600


def _base_url(settings: Settings) -> str:
    return (settings.public_url or f"http://{settings.api_host}:{settings.api_port}").rstrip("/")


async def compose(
    conn: AsyncConnection, notice: Claimed, settings: Settings
) -> Composed | Skip | Later:
    """The mail for a notice, from the rows as they are now (a confirmation whose tickets were
    revoked meanwhile is skipped: the cancellation mails tell the rest)."""
    if notice.kind not in MAILED_KINDS:
        return Skip(f"{notice.kind} notices are not mailed")
    user = (
        await conn.execute(
            text("SELECT email, full_name, is_active FROM users WHERE id = :id"),
            {"id": notice.user_id},
        )
    ).first()
    if user is None or not user.is_active:
        return Skip("no active account")
    name = store.holder_name(user.full_name, user.email)
    to = _recipient(user.full_name, user.email)
    base = _base_url(settings)
    kind = NotificationKind(notice.kind)

    if kind in ACCOUNT_KINDS:
        return await _account_mail(conn, notice, settings, kind, name, to, base)
    if kind == NotificationKind.WAITLIST_OFFER:
        return await _waitlist_offer(conn, notice, settings, name, to, base)
    if kind == NotificationKind.EVENT_CANCELLED:
        return await _event_cancelled(conn, notice, settings, name, to)

    booking = await _booking(conn, notice.booking_id)
    if booking is None:
        return Skip("no booking")
    event = await store.event_view(conn, booking.event_id, public_url=settings.public_url)
    if event is None:
        return Skip("no event")
    mail: Mail
    if kind == NotificationKind.TICKET_TRANSFERRED:  # to the new attendee (issue 32)
        new_name = str(notice.payload.get("name") or "")
        wanted = str(notice.payload.get("ticket_id"))
        views = store.ticket_views(
            store.signer(settings),
            await store.for_booking(conn, booking.id),
            new_name,
            await store.attendee_names(conn, booking.id),
        )
        transferred = [v for v in views if str(v.ticket_id) == wanted]
        if not transferred:
            return Skip("the transferred ticket is no longer valid")
        mail = TicketTransferred(
            event=event,
            booking_id=booking.id,
            buyer_name=transferred[0].holder_name,
            tickets=transferred,
        )
        return Composed(mail, _recipient(new_name, str(notice.payload.get("email"))))
    if kind == NotificationKind.EVENT_REMINDER:
        return await _event_reminder(conn, notice, settings, booking, event, name, to)
    if kind == NotificationKind.BOOKING_CONFIRMED:
        tickets = store.ticket_views(
            store.signer(settings),
            await store.for_booking(conn, booking.id),
            name,
            await store.attendee_names(conn, booking.id),
        )
        if not tickets:
            return Skip(f"no valid tickets (booking {booking.status})")
        mail = BookingConfirmed(
            event=event,
            booking_id=booking.id,
            buyer_name=name,
            tickets=tickets,
            amount=booking.amount,
            currency=booking.currency,
            booking_url=await _booking_url(conn, settings, booking.id, base),
            # issued by the statement that wrote this notice (evently/invoices.py): it exists;
            # none for a 0.00 booking
            invoice=await invoices.printable(conn, booking.id, source="confirm"),
        )
    elif kind == NotificationKind.TRANSFER_REMINDER:
        transfer = await _transfer(conn, booking.id)
        if transfer is None or booking.status != "held":
            return Skip(f"no transfer awaited (booking {booking.status})")
        mail = TransferReminder(
            event=event,
            booking_id=booking.id,
            buyer_name=name,
            amount=booking.amount,
            currency=booking.currency,
            payment_reference=transfer.payment_reference,
            pay_by=transfer.hold_expires_at,
            account_holder=transfer.bank_account_holder,
            iban=transfer.bank_iban,
            bic=transfer.bank_bic,
        )
    elif kind == NotificationKind.HOLD_EXPIRED:
        mail = HoldExpired(
            event=event,
            booking_id=booking.id,
            buyer_name=name,
            quantity=booking.quantity,
            expired_at=booking.ended_at or notice.created_at,
            event_url=f"{base}/api/v1/events/{booking.event_id}",
        )
    else:  # refund issued
        source = _credit_source(notice)
        credit_note = await invoices.printable(conn, booking.id, source=source)
        if credit_note is None and await _credit_note_coming(conn, notice, booking, source):
            return Later(f"the credit note ({source}) is not issued yet")
        mail = RefundIssued(
            event=event,
            booking_id=booking.id,
            buyer_name=name,
            amount=Decimal(str(notice.payload.get("amount", booking.amount))),
            currency=str(notice.payload.get("currency", booking.currency)),
            credit_note=credit_note,
        )
    return Composed(mail, to)


def _credit_source(notice: Claimed) -> str:
    """The credit note a refund notice is about: a partial cancellation's (its change number
    in the payload, evently/payments/records.py) or the whole cancellation's. Both are issued
    before the refund (by the statements that cancel); a late payment refunded has none."""
    change = notice.payload.get("change")
    return f"change-{int(change)}" if change is not None else "cancel"


async def _credit_note_coming(
    conn: AsyncConnection, notice: Claimed, booking: Any, source: str
) -> bool:
    """The refunded booking has an invoice and the statement that credits it has not run yet:
    the booking is still confirmed (a whole cancellation releases it next), or the partial
    cancellation is refunded but not done. Not after CREDIT_NOTE_WAIT_SECONDS."""
    age = (datetime.now(UTC) - notice.created_at).total_seconds()
    if booking.status != "confirmed" or age > CREDIT_NOTE_WAIT_SECONDS:
        return False
    return bool(
        await conn.scalar(
            text(
                """SELECT EXISTS (SELECT 1 FROM invoices
                                  WHERE booking_id = :b AND source = 'confirm')
                   AND (CAST(:change AS integer) IS NULL OR EXISTS (
                        SELECT 1 FROM booking_changes WHERE booking_id = :b
                        AND change_no = CAST(:change AS integer) AND status = 'refunded'))"""
            ),
            {"b": booking.id, "change": notice.payload.get("change")},
        )
    )


async def _event_reminder(
    conn: AsyncConnection,
    notice: Claimed,
    settings: Settings,
    booking: Any,
    event: EventView,
    buyer_name: str,
    buyer: str | Address,
) -> Composed | Skip:
    """Issue 33: one ticket's reminder (evently/reminders.py wrote it), to the ticket's
    attendee — a transfer's new attendee, else the attendee named at booking — when they gave
    an address, else to the buyer (a guest buyer's row like any account's)."""
    if event.cancelled or booking.status != "confirmed":
        return Skip(f"nothing to remind of (event cancelled or booking {booking.status})")
    wanted = str(notice.payload.get("ticket_id"))
    attendees = await store.attendees(conn, booking.id)
    views = store.ticket_views(
        store.signer(settings),
        await store.for_booking(conn, booking.id),
        buyer_name,
        {t: a.name for t, a in attendees.items() if a.name},
    )
    ticket = next((v for v in views if str(v.ticket_id) == wanted), None)
    if ticket is None:
        return Skip("the ticket is no longer valid")
    attendee = attendees.get(ticket.ticket_id)
    to = _recipient(attendee.name, attendee.email) if attendee and attendee.email else buyer
    mail = EventReminder(
        event=event, booking_id=booking.id, buyer_name=ticket.holder_name, tickets=[ticket]
    )
    return Composed(mail, to)


ACCOUNT_KINDS = (
    NotificationKind.ACCOUNT_WELCOME,
    NotificationKind.ACCOUNT_EXISTS,
    NotificationKind.PASSWORD_RESET,
    NotificationKind.EMAIL_VERIFICATION,
)


def _token_id(notice: Claimed) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(notice.payload["token_id"]))
    except (KeyError, ValueError):
        return None


async def _account_mail(
    conn: AsyncConnection,
    notice: Claimed,
    settings: Settings,
    kind: NotificationKind,
    name: str,
    to: str | Address,
    base: str,
) -> Composed | Skip:
    """Sign-up and recovery mail (issues 28, 32). The links' tokens are recomputed from the
    token row named in the payload (evently/account_tokens.py), while it is worth mailing."""
    login_url = f"{base}/login"
    if kind == NotificationKind.ACCOUNT_EXISTS:
        return Composed(
            AccountExists(
                buyer_name=name, login_url=login_url, reset_url=f"{base}/forgot-password"
            ),
            to,
        )
    token_id = _token_id(notice)
    if kind in (NotificationKind.ACCOUNT_WELCOME, NotificationKind.EMAIL_VERIFICATION):
        verify = (
            await account_tokens.mailable(
                conn, settings, token_id, account_tokens.EMAIL_VERIFICATION
            )
            if token_id is not None
            else None
        )
        verify_url = f"{base}/verify-email?token={verify.token}" if verify else None
        if kind == NotificationKind.ACCOUNT_WELCOME:
            return Composed(
                AccountWelcome(buyer_name=name, login_url=login_url, verify_url=verify_url), to
            )
        if verify_url is None:
            return Skip("the link was used, has expired, or is for another address")
        return Composed(
            EmailVerification(
                buyer_name=name,
                verify_url=verify_url,
                valid_hours=settings.email_verification_hours,
            ),
            to,
        )
    reset = (
        await account_tokens.mailable(conn, settings, token_id, account_tokens.PASSWORD_RESET)
        if token_id is not None
        else None
    )
    if reset is None:
        return Skip("the reset link was used, has expired, or is for another address")
    return Composed(
        PasswordReset(
            buyer_name=name,
            reset_url=f"{base}/reset-password?token={reset.token}",
            valid_minutes=settings.password_reset_minutes,
        ),
        to,
    )


async def _booking_url(
    conn: AsyncConnection, settings: Settings, booking_id: uuid.UUID, base: str
) -> str:
    """A guest booking's mail carries its access link (issue 32: opens it without an
    account); an account's booking, its tickets for the account's token."""
    key = await booking_keys.mailable_key(conn, settings, booking_id)
    if key is not None:
        return booking_keys.access_url(settings, booking_id, key)
    return f"{base}/api/v1/bookings/{booking_id}/tickets"


async def _booking(conn: AsyncConnection, booking_id: uuid.UUID | None) -> Any:
    if booking_id is None:
        return None
    return (
        await conn.execute(
            text(
                """SELECT id, event_id, quantity, amount, currency, status, ended_at
                   FROM bookings WHERE id = :id"""
            ),
            {"id": booking_id},
        )
    ).first()


async def _transfer(conn: AsyncConnection, booking_id: uuid.UUID) -> Any:
    """A bank-transfer booking's reference, window end and its organization's account."""
    return (
        await conn.execute(
            text(
                """SELECT b.payment_reference, b.hold_expires_at, o.bank_account_holder,
                          o.bank_iban, o.bank_bic
                   FROM bookings b JOIN events e ON e.id = b.event_id
                   JOIN organizations o ON o.id = e.organization_id
                   WHERE b.id = :id AND b.payment_reference IS NOT NULL
                     AND o.bank_iban IS NOT NULL"""
            ),
            {"id": booking_id},
        )
    ).first()


async def _waitlist_offer(
    conn: AsyncConnection,
    notice: Claimed,
    settings: Settings,
    name: str,
    to: str | Address,
    base: str,
) -> Composed | Skip:
    entry = (
        await conn.execute(
            text(
                """SELECT id, event_id, status, offered_quantity, offer_expires_at
                   FROM waitlist_entries WHERE id = :id"""
            ),
            {"id": notice.waitlist_entry_id},
        )
    ).first()
    if entry is None:
        return Skip("no waitlist entry")
    if entry.status != "offered":
        return Skip(f"the offer is no longer open ({entry.status})")
    event = await store.event_view(conn, entry.event_id, public_url=settings.public_url)
    if event is None:
        return Skip("no event")
    return Composed(
        WaitlistOffer(
            event=event,
            buyer_name=name,
            quantity=entry.offered_quantity,
            # POST it with the buyer's token (a storefront page can take its place)
            accept_url=f"{base}/api/v1/waitlist/{entry.id}/accept",
            expires_at=entry.offer_expires_at,
        ),
        to,
    )


async def _event_cancelled(
    conn: AsyncConnection, notice: Claimed, settings: Settings, name: str, to: str | Address
) -> Composed | Skip:
    event_id = uuid.UUID(str(notice.payload.get("event_id")))
    event = await store.event_view(conn, event_id, public_url=settings.public_url)
    if event is None:
        return Skip("no event")
    # the buyer's booking the notice is about: the one that was paid, else the latest
    booking = (
        await conn.execute(
            text(
                """SELECT id, amount, currency, confirmed_at FROM bookings
                   WHERE event_id = :e AND user_id = :u AND status <> 'rejected'
                   ORDER BY confirmed_at IS NULL, created_at DESC LIMIT 1"""
            ),
            {"e": event_id, "u": notice.user_id},
        )
    ).first()
    if booking is None:
        return Skip("no booking for this event")
    paid = booking.confirmed_at is not None
    return Composed(
        EventCancelled(
            event=event,
            booking_id=booking.id,
            buyer_name=name,
            refund_amount=booking.amount if paid else None,
            currency=booking.currency if paid else None,
        ),
        to,
    )


__all__ = [
    "CHANNEL",
    "MAILED_KINDS",
    "Claimed",
    "Composed",
    "Later",
    "Skip",
    "claim",
    "compose",
    "due",
    "finish",
    "release",
    "status",
]
