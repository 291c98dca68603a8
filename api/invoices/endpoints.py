"""A booking's invoices and credit notes (issue 31; docs/money.md): listed for the buyer
(or a guest with the booking's key), each as a PDF; the organization's finance list and CSV
live with the organizer routes (api/organizer/endpoints.py) and reuse :func:`invoice_items`."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api.bookings.access import BookingUser
from api.bookings.schemas import Money, TaxOut
from api.deps import SessionDep
from api.problems import problem_responses
from api.tickets.service import readable_booking
from evently import invoices
from evently.errors import BookingNotFound, InvoiceNotFound

router = APIRouter(tags=["invoices"])


class PdfResponse(Response):
    media_type = "application/pdf"


class InvoiceOut(BaseModel):
    """An invoice (issued when the booking is confirmed) or a credit note (a refund, a
    cancelled line): the amounts it covers, each document's own (positive) numbers."""

    id: uuid.UUID
    booking_id: uuid.UUID
    number: str  # {prefix}-{year}-{n}: one gap-free sequence per organization and year
    kind: Literal["invoice", "credit_note"]
    issued_at: datetime
    refers_to: uuid.UUID | None  # a credit note's invoice
    refers_to_number: str | None
    subtotal: Money
    discount: Money
    fees: Money
    taxes: list[TaxOut]
    net: Money  # the total less its taxes
    total: Money
    currency: str
    pdf_url: str


class InvoiceList(BaseModel):
    items: list[InvoiceOut]


async def invoice_items(session: AsyncSession, docs: list[Any]) -> list[InvoiceOut]:
    out = []
    for d, b in zip(docs, await invoices.breakdowns(session, docs), strict=True):
        out.append(
            InvoiceOut(
                id=d.id,
                booking_id=d.booking_id,
                number=d.number,
                kind=d.kind,
                issued_at=d.created_at,
                refers_to=d.refers_to,
                refers_to_number=invoices.refers_number(docs, d),
                subtotal=b.subtotal,
                discount=b.discount,
                fees=b.fees,
                taxes=[
                    TaxOut(name=t.name, rate=t.rate, amount=t.amount, included=t.included)
                    for t in b.taxes
                ],
                net=Decimal(d.total) - b.tax_total,
                total=Decimal(d.total),
                currency=d.currency,
                pdf_url=f"/api/v1/bookings/{d.booking_id}/invoices/{d.id}.pdf",
            )
        )
    return out


@router.get(
    "/bookings/{booking_id}/invoices",
    response_model=InvoiceList,
    responses=problem_responses(BookingNotFound),
    summary="The booking's invoice and credit notes",
)
async def list_invoices(
    booking_id: uuid.UUID, user: BookingUser, session: SessionDep
) -> InvoiceList:
    """Oldest first: the invoice issued with the confirmation, then a credit note per refund
    or cancelled line (none before the booking is confirmed; none for a 0.00 booking). A
    guest sends the booking's access key (`Evently-Booking-Key`)."""
    booking = await readable_booking(session, user, booking_id)
    return InvoiceList(
        items=await invoice_items(session, await invoices.of_booking(session, booking.id))
    )


@router.get(
    "/bookings/{booking_id}/invoices/{invoice_id}.pdf",
    response_class=PdfResponse,
    responses={
        200: {
            "description": "The invoice or credit note, one A4 page",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        },
        **problem_responses(BookingNotFound, InvoiceNotFound),
    },
    summary="An invoice or credit note as a PDF",
)
async def invoice_pdf_file(
    booking_id: uuid.UUID, invoice_id: uuid.UUID, user: BookingUser, session: SessionDep
) -> Response:
    booking = await readable_booking(session, user, booking_id)
    doc = await invoices.printable(session, booking.id, invoice_id=invoice_id)
    if doc is None:
        raise InvoiceNotFound()
    return PdfResponse(
        doc.pdf(),
        headers={
            "Content-Disposition": f'attachment; filename="{doc.filename}"',
            "Cache-Control": "private, no-store",
        },
    )
