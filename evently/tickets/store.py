"""Tickets as stored, and their secrets.

A ticket row is issued by the confirm statement (evently/inventory/seats.py) and revoked by the
release of its booking. Its secret, the QR payload, is the Ed25519 signature of the platform's
key over (ticket id, event id, seat, issued_at) (evently/tickets/signing.py): deterministic,
so it is recomputed whenever it is shown and never stored — a database dump holds no ticket a
thief could print. Changing the signing key changes the secrets shown from then on; secrets
already handed out keep verifying while the old public key is listed in
``EVENTLY_TICKET_VERIFY_KEYS``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from evently.enums import TicketStatus
from evently.tickets.render import EventView, TicketView
from evently.tickets.signing import (
    TicketClaims,
    key_id,
    load_private_key,
    load_public_key,
    public_key_b64,
    public_key_pem,
    sign_ticket,
    verify_ticket,
)

Db = AsyncSession | AsyncConnection


# ---- keys ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signer:
    """The signing key and every public key a ticket may verify with (the current one first)."""

    private_key: Ed25519PrivateKey
    public_keys: tuple[Ed25519PublicKey, ...]

    def sign(self, claims: TicketClaims) -> str:
        return sign_ticket(self.private_key, claims)

    def verify(self, secret: str) -> TicketClaims:
        """Raises ``signing.InvalidTicket``."""
        return verify_ticket(self.public_keys, secret)

    def published(self) -> list[dict[str, Any]]:
        return [
            {
                "key_id": key_id(k),
                "algorithm": "Ed25519",
                "public_key": public_key_b64(k),
                "pem": public_key_pem(k),
                "current": i == 0,
            }
            for i, k in enumerate(self.public_keys)
        ]


@lru_cache(maxsize=4)
def _signer(signing_key: str, verify_keys: str) -> Signer:
    private = load_private_key(signing_key)
    current = private.public_key()
    extra = [load_public_key(k) for k in verify_keys.split(",") if k.strip()]
    keys = [current] + [k for k in extra if key_id(k) != key_id(current)]
    return Signer(private, tuple(keys))


class KeySettings(Protocol):
    """The two settings a signer is made of (evently.settings.Settings has them)."""

    @property
    def ticket_signing_key(self) -> str: ...

    @property
    def ticket_verify_keys(self) -> str: ...


def signer(settings: KeySettings) -> Signer:
    """Built once per key setting (loading a key is cheap, but not free per request)."""
    return _signer(settings.ticket_signing_key, settings.ticket_verify_keys)


# ---- rows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketRow:
    id: uuid.UUID
    booking_id: uuid.UUID
    event_id: uuid.UUID
    seat: int
    status: TicketStatus
    issued_at: datetime
    revoked_at: datetime | None
    checked_in_at: datetime | None
    checked_in_device: str | None
    #: the reserved seat it admits to (issue 34); None: general admission
    place: Place | None = None

    @property
    def claims(self) -> TicketClaims:
        return TicketClaims(self.id, self.event_id, self.seat, self.issued_at)

    @property
    def label(self) -> str:
        return seat_label(self.seat, self.place)

    @property
    def valid(self) -> bool:
        return self.status == TicketStatus.VALID


@dataclass(frozen=True)
class Place:
    """A reserved seat as the plan names it (evently/seating.py): section, row, seat label."""

    seat_id: str
    section: str
    row: str
    label: str

    @property
    def printed(self) -> str:
        """As the ticket prints it: ``Section B · Row 7 · Seat 12``."""
        parts = (f"Section {self.section}", f"Row {self.row}", f"Seat {self.label}")
        return " \N{MIDDLE DOT} ".join(parts)

    @property
    def spoken(self) -> str:
        """As the door tells the guest: ``Section B, row 7, seat 12``."""
        return f"Section {self.section}, row {self.row}, seat {self.label}"


def place_of(
    seat_id: str | None, section: str | None, row: str | None, label: str | None
) -> Place | None:
    """A row's ``seat_id, section, row, seat_label`` columns (:data:`PLACE_SQL`) as a Place."""
    if seat_id is None or section is None or row is None or label is None:
        return None
    return Place(seat_id, section, row, label)


#: the columns :func:`place_of` reads, for a query with tickets ``t`` LEFT JOIN-ed to
#: ``event_seats es`` by :data:`PLACE_JOIN`
PLACE_SQL = "t.seat_id, es.section, es.row, es.label AS seat_label"
PLACE_JOIN = "LEFT JOIN event_seats es ON es.event_id = t.event_id AND es.seat_id = t.seat_id"


def seat_label(seat: int, place: Place | None = None) -> str:
    """What the ticket and the door read: the reserved seat, else the serial number of a
    general-admission ticket within its event."""
    return place.printed if place is not None else f"General admission #{seat}"


def _row(r: Any) -> TicketRow:
    return TicketRow(
        id=r.id,
        booking_id=r.booking_id,
        event_id=r.event_id,
        seat=r.seat,
        status=TicketStatus(r.status),
        issued_at=r.issued_at,
        revoked_at=r.revoked_at,
        checked_in_at=r.checked_in_at,
        checked_in_device=r.checked_in_device,
        place=place_of(r.seat_id, r.section, r.row, r.seat_label),
    )


_COLUMNS = (
    "t.id, t.booking_id, t.event_id, t.seat, t.status, t.issued_at, t.revoked_at, "
    f"t.checked_in_at, t.checked_in_device, {PLACE_SQL}"
)


async def for_booking(db: Db, booking_id: uuid.UUID) -> list[TicketRow]:
    rows = await db.execute(
        text(
            f"SELECT {_COLUMNS} FROM tickets t {PLACE_JOIN} WHERE t.booking_id = :b ORDER BY t.seat"
        ),
        {"b": booking_id},
    )
    return [_row(r) for r in rows]


async def get(db: Db, ticket_id: uuid.UUID) -> TicketRow | None:
    row = (
        await db.execute(
            text(f"SELECT {_COLUMNS} FROM tickets t {PLACE_JOIN} WHERE t.id = :id"),
            {"id": ticket_id},
        )
    ).first()
    return _row(row) if row is not None else None


# ---- what rendering needs ---------------------------------------------------------------------


async def event_view(
    db: Db, event_id: uuid.UUID, *, public_url: str | None = None, drafts: bool = True
) -> EventView | None:
    """The event as tickets, mails and calendars show it (None: no such event, or a draft
    when ``drafts`` is false)."""
    row = (
        await db.execute(
            text(
                """SELECT e.id, e.name, e.description, e.starts_at, e.ends_at, e.status,
                          v.name AS venue_name, v.address, v.city
                   FROM events e JOIN venues v ON v.id = e.venue_id WHERE e.id = :id"""
            ),
            {"id": event_id},
        )
    ).first()
    if row is None or (row.status == "draft" and not drafts):
        return None
    return EventView(
        event_id=row.id,
        name=row.name,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        venue_name=row.venue_name,
        venue_address=row.address,
        city=row.city,
        description=row.description or "",
        url=f"{public_url.rstrip('/')}/api/v1/events/{row.id}" if public_url else None,
        cancelled=row.status == "cancelled",
    )


def ticket_views(
    signer_: Signer,
    tickets: list[TicketRow],
    holder_name: str,
    attendee_names: dict[uuid.UUID, str] | None = None,
) -> list[TicketView]:
    """Valid tickets, with their secrets, as the PDF and the mail show them. A ticket with a
    named attendee (issue 32: :func:`attendee_names`) carries that name, else the buyer's."""
    names = attendee_names or {}
    return [
        TicketView(
            ticket_id=t.id,
            booking_id=t.booking_id,
            secret=signer_.sign(t.claims),
            holder_name=names.get(t.id) or holder_name,
            seat_label=t.label,
        )
        for t in tickets
        if t.valid
    ]


@dataclass(frozen=True)
class Attendee:
    """Who a ticket is for (issue 32): a name and/or an address, either may be empty."""

    name: str
    email: str


async def attendees(db: Db, booking_id: uuid.UUID) -> dict[uuid.UUID, Attendee]:
    """Each ticket's attendee (issue 32): the i-th attendee of the booking is the holder of
    its i-th ticket as issued at confirmation (seat order); a ticket issued by a transfer is
    the new attendee's. Tickets without a name or an address are left out."""
    found = await db.scalar(
        text("SELECT attendees FROM booking_attendees WHERE booking_id = :b"), {"b": booking_id}
    )
    given = [
        Attendee(" ".join(str(a.get("name") or "").split()), str(a.get("email") or "").strip())
        for a in (found or [])
    ]
    rows = await db.execute(
        text(
            "SELECT t.id, tr.name AS transferred_to, tr.email AS transferred_email "
            "FROM tickets t LEFT JOIN ticket_transfers tr ON tr.new_ticket_id = t.id "
            "WHERE t.booking_id = :b ORDER BY t.seat"
        ),
        {"b": booking_id},
    )
    found_by_ticket: dict[uuid.UUID, Attendee] = {}
    position = 0
    for r in rows:
        if r.transferred_to is not None:
            found_by_ticket[r.id] = Attendee(r.transferred_to, r.transferred_email or "")
            continue
        if position < len(given) and (given[position].name or given[position].email):
            found_by_ticket[r.id] = given[position]
        position += 1
    return found_by_ticket


async def attendee_names(db: Db, booking_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """Each ticket's attendee name (:func:`attendees`); tickets without a name are left out."""
    return {t: a.name for t, a in (await attendees(db, booking_id)).items() if a.name}


async def holder(db: Db, user_id: uuid.UUID) -> str:
    """The name the buyer's tickets carry (their name, else their email)."""
    row = (
        await db.execute(text("SELECT full_name, email FROM users WHERE id = :id"), {"id": user_id})
    ).one()
    return holder_name(row.full_name, row.email)


def holder_name(full_name: str | None, email: str) -> str:
    return (full_name or "").strip() or email
