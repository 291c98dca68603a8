"""Invoices and credit notes (issue 31): issued by the very statements that confirm a booking,
cancel some of its lines or cancel it (evently/inventory/seats.py embeds the fragments below),
numbered gap-free per organization and year, and read here for the API, the PDF and the CSV.

Numbering: ``{prefix}-{year}-{n}``. ``n`` comes from the counter row of the (organization,
year): ``INSERT ... ON CONFLICT DO UPDATE SET n = n + 1 RETURNING n`` in the same statement
(and so the same transaction) as the confirmation. A confirmation that rolls back rolls its
number back; concurrent confirmations queue on the counter row; nothing is ever taken from a
Postgres sequence (which has gaps). Invoices and credit notes share the sequence.

Amounts: an invoice's total is the booking's charged amount; a partial cancellation's credit
note is the change's refund (:func:`evently.pricing.breakdown` before minus after); a whole
cancellation's is the invoice less every earlier credit note, which is exactly what the whole
refund gives back (the charge less every partial refund).
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from evently import invoice_pdf, pricing

#: the reads run on an ORM session (the API) or a plain connection (the mail outbox)
Db = AsyncSession | AsyncConnection

#: the current year of an invoice number (UTC)
_YEAR = "CAST(extract(year FROM now() AT TIME ZONE 'UTC') AS integer)"
_ACTIVE_SEATS = (
    "(SELECT COALESCE(jsonb_object_agg(l.ticket_type_id, l.quantity - l.cancelled), '{{}}') "
    "FROM booking_lines l WHERE l.booking_id = {b})"
)
_SELLER = (
    "jsonb_build_object('name', o.name, 'legal_name', o.legal_name, "
    "'address', o.legal_address, 'vat_id', o.vat_id)"
)


def _numbered(src: str, prefix: str, kind: str) -> str:
    """The CTEs that number the documents of ``src`` (organization_id, year, booking_id,
    source, total, currency, price, seats, buyer, refers_to) and insert them."""
    return f"""
{prefix}_n AS (
    INSERT INTO invoice_counters AS c (organization_id, year, n)
    SELECT organization_id, year, 1 FROM {src}
    ON CONFLICT (organization_id, year) DO UPDATE SET n = c.n + 1
    RETURNING c.organization_id, c.year, c.n
), {prefix}_doc AS (
    INSERT INTO invoices (organization_id, booking_id, kind, source, refers_to, year, n, number,
                          total, currency, price, seats, seller, buyer)
    SELECT s.organization_id, s.booking_id, '{kind}', s.source, s.refers_to, k.year, k.n,
           o.invoice_prefix || '-' || k.year || '-' || k.n, s.total, s.currency, s.price,
           s.seats, {_SELLER}, s.buyer
    FROM {src} s JOIN {prefix}_n k ON k.organization_id = s.organization_id
    JOIN organizations o ON o.id = s.organization_id
)"""


#: the invoice of the booking just confirmed by the CTE ``b`` (id, event_id, amount, currency,
#: price, billing): a card sale's or a box-office sale's; none for 0.00 (free, comp)
ISSUE_INVOICE = f"""
inv_src AS (
    SELECT e.organization_id, {_YEAR} AS year, b.id AS booking_id, 'confirm' AS source,
           b.amount AS total, b.currency, b.price,
           jsonb_build_object('from', {_ACTIVE_SEATS.format(b="b.id")}, 'to', '{{}}'::jsonb)
               AS seats,
           b.billing AS buyer, CAST(NULL AS uuid) AS refers_to
    FROM b JOIN events e ON e.id = b.event_id
    WHERE b.amount > 0
),""" + _numbered("inv_src", "inv", "invoice")

#: the credit note of a partial cancellation: CTEs ``ch`` (booking_id, refund_amount, and
#: :change_no) and ``req`` (tt, q) of the _CANCEL_LINES statement
CREDIT_CHANGE = f"""
cn_src AS (
    SELECT i.organization_id, {_YEAR} AS year, ch.booking_id,
           'change-' || CAST(:change_no AS integer) AS source, ch.refund_amount AS total,
           i.currency, i.price,
           jsonb_build_object(
               'from', {_ACTIVE_SEATS.format(b="ch.booking_id")},
               'to', (SELECT COALESCE(jsonb_object_agg(
                          l.ticket_type_id, l.quantity - l.cancelled - COALESCE(r.q, 0)), '{{}}')
                      FROM booking_lines l LEFT JOIN req r ON r.tt = l.ticket_type_id
                      WHERE l.booking_id = ch.booking_id)) AS seats,
           i.buyer, i.id AS refers_to
    FROM ch JOIN invoices i ON i.booking_id = ch.booking_id AND i.source = 'confirm'
),""" + _numbered("cn_src", "cn", "credit_note")

#: the credit note of a whole cancellation (refunded) of the booking ``b`` of _RELEASE
CREDIT_CANCEL = f"""
cn_src AS (
    SELECT i.organization_id, {_YEAR} AS year, b.id AS booking_id, 'cancel' AS source,
           i.total - COALESCE((SELECT sum(x.total) FROM invoices x
                               WHERE x.booking_id = b.id AND x.kind = 'credit_note'), 0)
               AS total,
           i.currency, i.price,
           jsonb_build_object('from', {_ACTIVE_SEATS.format(b="b.id")}, 'to', '{{}}'::jsonb)
               AS seats,
           i.buyer, i.id AS refers_to
    FROM b JOIN invoices i ON i.booking_id = b.id AND i.source = 'confirm'
    WHERE CAST(:from_status AS text) = 'confirmed'
),""" + _numbered("cn_src", "cn", "credit_note")


# ---- reads ----------------------------------------------------------------------------------

_COLUMNS = (
    "i.id, i.organization_id, i.booking_id, i.kind, i.source, i.refers_to, i.number, i.year, "
    "i.n, i.total, i.currency, i.price, i.seats, i.seller, i.buyer, i.created_at"
)


async def of_booking(session: Db, booking_id: uuid.UUID) -> list[Any]:
    rows = await session.execute(
        text(f"SELECT {_COLUMNS} FROM invoices i WHERE i.booking_id = :b ORDER BY i.year, i.n"),
        {"b": booking_id},
    )
    return list(rows)


async def one(session: AsyncSession, booking_id: uuid.UUID, invoice_id: uuid.UUID) -> Any:
    return (
        await session.execute(
            text(f"SELECT {_COLUMNS} FROM invoices i WHERE i.booking_id = :b AND i.id = :i"),
            {"b": booking_id, "i": invoice_id},
        )
    ).first()


async def of_organization(
    session: AsyncSession, organization_id: uuid.UUID, *, limit: int = 10_000
) -> list[Any]:
    rows = await session.execute(
        text(
            f"SELECT {_COLUMNS} FROM invoices i WHERE i.organization_id = :o "
            "ORDER BY i.year, i.n LIMIT :limit"
        ),
        {"o": organization_id, "limit": limit},
    )
    return list(rows)


async def breakdowns(session: Db, docs: list[Any]) -> list[pricing.Breakdown]:
    """The amounts of each invoice or credit note: its booking's breakdown over the seats it
    covers (``from`` less ``to``). The lines of the untaxed ones (nothing frozen on the
    booking) are read in one statement for all of them."""
    untaxed = list({d.booking_id for d in docs if d.price is None})
    lines: dict[uuid.UUID, list[tuple[str, str, int, Decimal, Decimal]]] = {}
    if untaxed:
        for r in await session.execute(
            text(
                "SELECT l.booking_id, l.ticket_type_id, t.name, l.quantity, l.unit_price, "
                "l.discount FROM booking_lines l JOIN ticket_types t ON t.id = l.ticket_type_id "
                "WHERE l.booking_id = ANY(:b) ORDER BY t.position, t.created_at"
            ),
            {"b": untaxed},
        ):
            lines.setdefault(r[0], []).append((str(r[1]), r[2], r[3], r[4], r[5]))
    out = []
    for d in docs:
        inputs = (
            pricing.PriceInputs.from_json(d.price)
            if d.price is not None
            else pricing.untaxed(d.currency, lines.get(d.booking_id, []))
        )
        seats = d.seats or {}
        out.append(seats_breakdown(inputs, seats.get("from"), seats.get("to") or {}))
    return out


async def document_breakdown(session: Db, doc: Any) -> pricing.Breakdown:
    """One document's amounts (:func:`breakdowns`)."""
    return (await breakdowns(session, [doc]))[0]


def seats_breakdown(
    inputs: pricing.PriceInputs, seats_from: dict[str, int] | None, seats_to: dict[str, int]
) -> pricing.Breakdown:
    before = pricing.breakdown(inputs, seats_from)
    after = pricing.breakdown(inputs, seats_to)
    part = before.minus(after)
    part.lines = [
        pricing.PricedLine(
            b.kind,
            b.name,
            b.quantity - a.quantity,
            b.amount - a.amount,
            b.tax - a.tax,
            b.tax_name,
            b.tax_rate,
            b.tax_included,
            b.discount - a.discount,
            b.passed_on,
        )
        for b, a in zip(before.lines, after.lines, strict=True)
    ]
    return part


CSV_HEADER = [
    "number",
    "kind",
    "date",
    "booking_id",
    "refers_to",
    "currency",
    "subtotal",
    "discount",
    "fees",
    "tax",
    "taxes",
    "total",
    "net",
    "buyer_name",
    "buyer_vat_id",
]


async def csv_export(session: AsyncSession, organization_id: uuid.UUID) -> str:
    """Every invoice and credit note of the organization, one row each, for finance (credit
    notes with their own positive amounts; ``kind`` tells them apart)."""
    docs = await of_organization(session, organization_id)
    numbers = {d.id: d.number for d in docs}
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for d, b in zip(docs, await breakdowns(session, docs), strict=True):
        buyer = d.buyer or {}
        w.writerow(
            [
                d.number,
                d.kind,
                d.created_at.date().isoformat(),
                str(d.booking_id),
                numbers.get(d.refers_to, "") if d.refers_to else "",
                d.currency,
                str(b.subtotal),
                str(b.discount),
                str(b.fees),
                str(b.tax_total),
                "; ".join(f"{t.name} {t.rate}%: {t.amount}" for t in b.taxes),
                str(Decimal(d.total)),
                str(Decimal(d.total) - b.tax_total),
                buyer.get("name", ""),
                buyer.get("vat_id", ""),
            ]
        )
    return out.getvalue()


# ---- the buyer's billing details (asked at checkout) ----------------------------------------


async def set_billing(
    session: AsyncSession, booking_id: uuid.UUID, billing: dict[str, str] | None
) -> None:
    """The buyer's optional billing name, address and VAT id, printed on the invoice the
    confirmation issues (a held booking only: an issued invoice never changes)."""
    if not billing:
        return
    await session.execute(
        text(
            "UPDATE bookings SET billing = CAST(:billing AS jsonb) "
            "WHERE id = :b AND status = 'held'"
        ),
        {"b": booking_id, "billing": json.dumps(billing)},
    )


def refers_number(docs: list[Any], doc: Any) -> str | None:
    """The number of the invoice a credit note refers to."""
    if doc.refers_to is None:
        return None
    return next((d.number for d in docs if d.id == doc.refers_to), None)


async def event_name(session: Db, booking_id: uuid.UUID) -> str:
    name = await session.scalar(
        text("SELECT e.name FROM bookings b JOIN events e ON e.id = b.event_id WHERE b.id = :b"),
        {"b": booking_id},
    )
    return str(name or "")


@dataclass(frozen=True)
class Printable:
    """One invoice or credit note with everything its PDF prints (read once, rendered later:
    the mail renders it off the event loop)."""

    doc: Any
    breakdown: pricing.Breakdown
    refers_to: str | None
    event_name: str

    @property
    def number(self) -> str:
        return str(self.doc.number)

    @property
    def filename(self) -> str:
        return f"{self.doc.number}.pdf"

    def pdf(self) -> bytes:
        return invoice_pdf.render(
            self.doc, self.breakdown, refers_to=self.refers_to, event_name=self.event_name
        )


async def printable(
    session: Db,
    booking_id: uuid.UUID,
    *,
    invoice_id: uuid.UUID | None = None,
    source: str | None = None,
) -> Printable | None:
    """The booking's document with this id, or issued by this ``source`` (``confirm``: the
    invoice; ``change-{n}``: a partial cancellation's credit note; ``cancel``: the whole
    cancellation's); None if there is none (yet)."""
    docs = await of_booking(session, booking_id)
    doc = next(
        (
            d
            for d in docs
            if (invoice_id is None or d.id == invoice_id) and (source is None or d.source == source)
        ),
        None,
    )
    if doc is None:
        return None
    return Printable(
        doc,
        await document_breakdown(session, doc),
        refers_number(docs, doc),
        await event_name(session, booking_id),
    )


@dataclass
class Invoiced:
    """A booking's (or an event's) invoiced money, invoices less credit notes: the total, the
    tickets net of tax and fees, the taxes and the passed-on fees."""

    total: Decimal = Decimal(0)
    net: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)

    def add(self, sign: int, total: Decimal, b: pricing.Breakdown) -> None:
        self.total += sign * total
        self.net += sign * b.net_revenue
        self.tax += sign * b.tax_total
        self.fees += sign * b.fees


async def _invoiced(session: Db, docs: list[Any]) -> dict[uuid.UUID, Invoiced]:
    """Per booking, from its documents."""
    out: dict[uuid.UUID, Invoiced] = {}
    for d, b in zip(docs, await breakdowns(session, docs), strict=True):
        out.setdefault(d.booking_id, Invoiced()).add(
            1 if d.kind == "invoice" else -1, Decimal(d.total), b
        )
    return out


async def event_money(session: AsyncSession, event_id: uuid.UUID) -> tuple[Decimal, ...]:
    """The event's invoiced money (invoices less credit notes): (total, tickets net of tax and
    fees, taxes, passed-on fees). Analytics take the revenue net of tax and fees from it."""
    rows = await session.execute(
        text(
            f"SELECT {_COLUMNS} FROM invoices i JOIN bookings b ON b.id = i.booking_id "
            "WHERE b.event_id = :e ORDER BY i.year, i.n"
        ),
        {"e": event_id},
    )
    event = Invoiced()
    for one_booking in (await _invoiced(session, list(rows))).values():
        event.total += one_booking.total
        event.net += one_booking.net
        event.tax += one_booking.tax
        event.fees += one_booking.fees
    return event.total, event.net, event.tax, event.fees


async def booking_money(
    session: Db, booking_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[Decimal, Decimal, Decimal]]:
    """Per booking (the bookings export): (taxes, passed-on fees, net) where net is what
    analytics counts as its revenue net of tax and fees: succeeded charges less refunds, its
    invoiced part replaced by the invoices' net (so the column sums to the event's
    ``net_revenue``). Two statements for a page of bookings."""
    docs = list(
        await session.execute(
            text(
                f"SELECT {_COLUMNS} FROM invoices i WHERE i.booking_id = ANY(:b) "
                "ORDER BY i.year, i.n"
            ),
            {"b": booking_ids},
        )
    )
    invoiced = await _invoiced(session, docs)
    paid = {
        r.booking_id: Decimal(r.paid)
        for r in await session.execute(
            text(
                "SELECT booking_id, sum(CASE WHEN kind = 'charge' THEN amount ELSE -amount END) "
                "AS paid FROM payments WHERE booking_id = ANY(:b) AND status = 'succeeded' "
                "GROUP BY booking_id"
            ),
            {"b": booking_ids},
        )
    }
    out = {}
    for booking_id in booking_ids:
        i = invoiced.get(booking_id, Invoiced())
        net = paid.get(booking_id, Decimal(0)) - i.total + i.net
        out[booking_id] = (i.tax, i.fees, net)
    return out
