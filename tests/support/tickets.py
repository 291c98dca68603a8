"""Confirmed bookings through the real API, and what a door scanner does with a QR code."""

from __future__ import annotations

import asyncio
import io
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pypdfium2 as pdfium  # type: ignore[import-untyped]
import zxingcpp
from fpdf import FPDF
from PIL import Image

from evently.db.models import Event
from evently.infra.resources import Resources
from evently.tickets.signing import TicketClaims, load_public_key, verify_ticket
from tests.support.factories import Account, make_account, make_event


@dataclass
class Confirmed:
    buyer: Account
    event: Event
    booking_id: str


async def confirmed_booking(
    client: httpx.AsyncClient,
    res: Resources,
    *,
    quantity: int = 2,
    event: Event | None = None,
    buyer: Account | None = None,
) -> Confirmed:
    """reserve → pay with the simulated provider → confirmed (needs the booking workers)."""
    buyer = buyer or await make_account(res)
    event = event or await make_event(res, capacity=50, price=Decimal("30.00"))
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": str(event.id), "quantity": quantity},
        headers=buyer.headers,
    )
    assert r.status_code == 201, r.text
    booking_id = r.json()["booking_id"]
    r = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": booking_id, "payment_method": "pm_card_visa"},
        headers=buyer.headers,
    )
    assert r.status_code == 200, r.text
    return Confirmed(buyer, event, booking_id)


async def tickets_of(client: httpx.AsyncClient, c: Confirmed) -> list[dict[str, Any]]:
    r = await client.get(f"/api/v1/bookings/{c.booking_id}/tickets", headers=c.buyer.headers)
    assert r.status_code == 200, r.text
    tickets: list[dict[str, Any]] = r.json()["tickets"]
    return tickets


async def scanner_verify(client: httpx.AsyncClient, secret: str) -> TicketClaims:
    """What an offline scanner does: verify with the published public key(s) alone."""
    keys = (await client.get("/api/v1/checkin/keys")).json()["keys"]
    return verify_ticket([load_public_key(k["public_key"]) for k in keys], secret)


def decode_qr(image: Image.Image) -> list[str]:
    found = zxingcpp.read_barcodes(
        image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    )
    return [r.text for r in found]


def decode_pdf(pdf: bytes, dpi: float = 100) -> list[str]:
    """Every page rendered by PDFium (as a phone shows it) and decoded by zxing-cpp."""
    doc = pdfium.PdfDocument(pdf)
    out: list[str] = []
    for i in range(len(doc)):
        out += decode_qr(doc[i].render(scale=dpi / 72).to_pil())
    return out


def pdf_text(pdf: bytes) -> str:
    """The text PDFium extracts from every page (an invoice's number and amounts)."""
    doc = pdfium.PdfDocument(pdf)
    return "\n".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))


def decode_svg(svg: bytes) -> list[str]:
    """The served SVG, drawn by fpdf2's SVG renderer into a PDF, rasterised by PDFium."""
    pdf = FPDF(unit="mm", format=(100, 100))
    pdf.add_page()
    pdf.image(io.BytesIO(svg), x=10, y=10, w=80, h=80)
    return decode_pdf(bytes(pdf.output()), dpi=150)


async def wait_for(predicate: Any, seconds: float = 30, step: float = 0.2) -> None:
    """Poll an async predicate until it is true (the workers act asynchronously)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(step)


def new_nonce() -> str:
    return str(uuid.uuid4())
