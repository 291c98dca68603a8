"""Paying by bank transfer (issue 29): the event's window, the booking's payment reference, the
organization's bank details, and the booking's settlement once finance marks the money arrived.

A bank-transfer booking is a hold whose window is days long: it is stored ``held`` (the seats
counted as held, ``hold_expires_at`` = the window's end) with a ``payment_reference``; the API
shows it as ``awaiting_transfer``. Money that arrives after its seats were released and taken
by others leaves it ended with ``refund_due`` (shown as that status): finance pays it back.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from evently.db.models import Organization
from evently.enums import BookingChannel, BookingStatus, LateSettlement, NoChargeProvider
from evently.inventory import seats
from evently.inventory.types import Counters

AWAITING_TRANSFER = "awaiting_transfer"  # shown for a held bank-transfer booking
REFUND_DUE = "refund_due"  # shown for an ended booking whose transfer finance must pay back
MAX_WINDOW_DAYS = 30

# Crockford's base 32 (no I, L, O, U: nothing to misread when typed from a bank statement)
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# the check character: the value mod 37 in Crockford's check alphabet (catches any single wrong
# character and any swap of two adjacent ones)
_CHECK = _ALPHABET + "*~$=U"
_PREFIX = "EV"
_BODY = 10  # 50 bits


class BankTransferSetting(BaseModel):
    """An event's ``bank_transfer``: whether buyers may pay by transfer, and how many days
    they have (the seats are held that long)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    window_days: int = Field(default=3, ge=1, le=MAX_WINDOW_DAYS)

    @classmethod
    def of_days(cls, days: int | None) -> BankTransferSetting:
        return cls(enabled=True, window_days=days) if days else cls()

    def days(self) -> int | None:
        """The stored form (``events.bank_transfer_days``): None when off."""
        return self.window_days if self.enabled else None


@dataclass(frozen=True)
class BankDetails:
    account_holder: str
    iban: str
    bic: str | None


def bank_details(org: Organization) -> BankDetails | None:
    """The organization's account, or None when it has none (no bank transfer possible)."""
    if not org.bank_account_holder or not org.bank_iban:
        return None
    return BankDetails(org.bank_account_holder, org.bank_iban, org.bank_bic)


async def set_bank_account(
    session: AsyncSession,
    org: Organization,
    *,
    account_holder: str,
    iban: str,
    bic: str | None,
) -> Organization:
    org.bank_account_holder = account_holder
    org.bank_iban = normalize_iban(iban)
    org.bank_bic = bic
    await session.flush()
    await session.refresh(org)
    return org


def normalize_iban(iban: str) -> str:
    return "".join(iban.split()).upper()


def iban_valid(iban: str) -> bool:
    """ISO 13616: two letters, two check digits, up to 30 alphanumerics; mod 97 == 1."""
    s = normalize_iban(iban)
    if not (15 <= len(s) <= 34) or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    if not s.isalnum() or not s.isascii():
        return False
    digits = "".join(str(int(c, 36)) for c in s[4:] + s[:4])
    return int(digits) % 97 == 1


# ---- the payment reference --------------------------------------------------------------------


def _check_char(body: str) -> str:
    value = 0
    for c in body:
        value = value * 32 + _ALPHABET.index(c)
    return _CHECK[value % 37]


def reference_for(booking_id: uuid.UUID, attempt: int = 0) -> str:
    """``EV-XXXXX-XXXXX-C``: 10 characters derived from the booking id (the ``attempt``-th
    candidate, should an earlier one be taken) and a check character."""
    digest = hashlib.sha256(f"{booking_id}:{attempt}".encode()).digest()
    n = int.from_bytes(digest[:8], "big")
    body = "".join(_ALPHABET[(n >> (5 * i)) & 31] for i in range(_BODY))
    return f"{_PREFIX}-{body[:5]}-{body[5:]}-{_check_char(body)}"


def normalize_reference(typed: str) -> str | None:
    """A reference as typed (any case, spaces or dashes anywhere, O for 0, I/L for 1): the
    stored form, or None when it is not one (wrong length or check character)."""
    s = "".join(c for c in typed.upper() if c.isalnum() or c in "*~$=")
    s = s.translate(str.maketrans("OIL", "011"))
    if not s.startswith(_PREFIX) or len(s) != len(_PREFIX) + _BODY + 1:
        return None
    body, check = s[len(_PREFIX) : -1], s[-1]
    if any(c not in _ALPHABET for c in body) or _check_char(body) != check:
        return None
    return f"{_PREFIX}-{body[:5]}-{body[5:]}-{check}"


_ASSIGN = text(
    """
UPDATE bookings SET payment_reference = :ref
WHERE id = :id AND payment_reference IS NULL
  AND NOT EXISTS (SELECT 1 FROM bookings o WHERE o.payment_reference = :ref)
RETURNING payment_reference
"""
)


async def assign_reference(conn: AsyncConnection, booking_id: uuid.UUID) -> str:
    """The booking's reference (kept if it has one: idempotent), unique across bookings (hence
    within the organization). A taken candidate moves on to the next one."""
    for attempt in range(20):
        current = await conn.scalar(
            text("SELECT payment_reference FROM bookings WHERE id = :id"), {"id": booking_id}
        )
        if current is not None:
            return str(current)
        ref = reference_for(booking_id, attempt)
        if await conn.scalar(_ASSIGN, {"id": booking_id, "ref": ref}) is not None:
            return ref
    raise RuntimeError(f"no free payment reference for booking {booking_id}")


# ---- the money arrived ------------------------------------------------------------------------

_RECORD_CHARGE = text(
    """
INSERT INTO payments (id, booking_id, kind, status, provider, provider_payment_id,
                      idempotency_key, payment_method, amount, currency, created_at)
SELECT gen_random_uuid(), b.id, 'charge', 'succeeded', 'bank_transfer',
       'bank_transfer-' || b.id, b.id || '-bank_transfer', 'bank_transfer', b.amount,
       b.currency, now()
FROM bookings b WHERE b.id = :id
ON CONFLICT DO NOTHING
"""
)


@dataclass(frozen=True)
class Settled:
    outcome: str  # confirmed | refund_due | unknown
    counters: Counters | None = None  # the event's seats, when this settlement changed them
    taken_again: bool = False  # the seats were taken back after the window (late payment)


async def settle(conn: AsyncConnection, booking_id: uuid.UUID) -> Settled:
    """Finance marked the transfer arrived. Held (within the window): confirmed with its charge
    recorded under ``bank_transfer``, tickets issued, confirmation mailed — the card path's
    confirmation. Ended: the late-payment rule — the seats taken again if free (confirmed),
    else ``refund_due``. One transaction, the booking row locked. Idempotent."""
    status = await conn.scalar(
        text("SELECT status FROM bookings WHERE id = :id FOR UPDATE"), {"id": booking_id}
    )
    if status is None:
        return Settled("unknown")
    if status == BookingStatus.CONFIRMED:
        return Settled(BookingStatus.CONFIRMED)
    if status == BookingStatus.HELD:
        counters = await seats.confirm_without_charge(
            conn,
            booking_id,
            provider=NoChargeProvider.BANK_TRANSFER,
            channel=BookingChannel.ONLINE,
        )
        return Settled(BookingStatus.CONFIRMED, counters)
    await conn.execute(_RECORD_CHARGE, {"id": booking_id})
    outcome, counters = await seats.settle_late_payment(conn, booking_id)
    if outcome == LateSettlement.CONFIRMED:
        return Settled(BookingStatus.CONFIRMED, counters, taken_again=True)
    await conn.execute(
        text("UPDATE bookings SET refund_due = true, updated_at = now() WHERE id = :id"),
        {"id": booking_id},
    )
    return Settled(REFUND_DUE)


_REMINDER = text(
    """
INSERT INTO notifications (id, user_id, kind, dedupe_key, booking_id, payload)
SELECT gen_random_uuid(), b.user_id, 'transfer_reminder',
       'booking:' || b.id || ':' || 'transfer_reminder', b.id,
       jsonb_build_object('event_id', b.event_id, 'quantity', b.quantity)
FROM bookings b WHERE b.id = :id AND b.status = 'held' AND b.payment_reference IS NOT NULL
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
"""
)


async def remind(conn: AsyncConnection, booking_id: uuid.UUID) -> bool:
    """The reminder a day before the window ends: one notice (and mail) per booking, whoever
    asks how often. True when this call wrote it."""
    return await conn.scalar(_REMINDER, {"id": booking_id}) is not None


# the same in SQL, for lists, filters and exports (``b``: the bookings row)
SHOWN_STATUS_SQL = """CASE
    WHEN b.status = 'held' AND b.payment_reference IS NOT NULL THEN 'awaiting_transfer'
    WHEN b.refund_due AND b.status IN ('expired', 'cancelled') THEN 'refund_due'
    ELSE b.status END"""


def shown_status(status: str, payment_reference: str | None, refund_due: bool) -> str:
    """What buyers and staff see: ``awaiting_transfer`` for a held bank-transfer booking,
    ``refund_due`` for an ended one whose late transfer finance must pay back."""
    if status == BookingStatus.HELD and payment_reference is not None:
        return AWAITING_TRANSFER
    if refund_due and status in (BookingStatus.EXPIRED, BookingStatus.CANCELLED):
        return REFUND_DUE
    return status


# ---- reads for the reserve path ---------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    window_days: int
    account: BankDetails


_OFFER = text(
    """
SELECT e.bank_transfer_days, o.bank_account_holder, o.bank_iban, o.bank_bic
FROM events e JOIN organizations o ON o.id = e.organization_id WHERE e.id = :id
"""
)


async def offer(engine: AsyncEngine, event_id: uuid.UUID) -> Offer | None:
    """The event's bank-transfer window and its organization's account; None when the event
    takes no transfers (off, no account, or no such event)."""
    async with engine.connect() as conn:
        row = (await conn.execute(_OFFER, {"id": event_id})).first()
    if row is None or not row.bank_transfer_days or not row.bank_iban:
        return None
    account = BankDetails(row.bank_account_holder, row.bank_iban, row.bank_bic)
    return Offer(row.bank_transfer_days, account)


async def reference_of(engine: AsyncEngine, booking_id: uuid.UUID) -> str | None:
    async with engine.connect() as conn:
        ref: str | None = await conn.scalar(
            text("SELECT payment_reference FROM bookings WHERE id = :id"), {"id": booking_id}
        )
    return ref


async def shown_status_of(engine: AsyncEngine, booking_id: uuid.UUID) -> str:
    async with engine.connect() as conn:
        status: str = await conn.scalar(
            text(f"SELECT {SHOWN_STATUS_SQL} FROM bookings b WHERE b.id = :id"),
            {"id": booking_id},
        )
    return status
