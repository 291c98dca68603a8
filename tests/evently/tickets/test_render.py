"""QR, PDF and calendar output, read back the way a door scanner and a calendar app would:
QR codes are rasterised from what we really serve and decoded with zxing-cpp."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta

import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pytest
import zxingcpp
from fpdf import FPDF
from icalendar import Calendar
from PIL import Image

from evently.tickets import render
from evently.tickets.render import (
    EventView,
    TicketView,
    event_ics,
    event_uid,
    make_qr,
    qr_png,
    qr_svg,
    tickets_pdf,
)
from evently.tickets.signing import (
    TicketClaims,
    generate_keypair,
    load_public_key,
    public_key_pem,
    sign_ticket,
    verify_ticket,
)

START = datetime(2026, 12, 4, 18, 30, tzinfo=UTC)


def make_event(**overrides: object) -> EventView:
    fields: dict[str, object] = {
        "event_id": uuid.uuid4(),
        "name": "Nils Frahm — Live",
        "starts_at": START,
        "ends_at": START + timedelta(hours=3, minutes=30),
        "venue_name": "Philharmonie",
        "venue_address": "Herbert-von-Karajan-Str. 1",
        "city": "Berlin",
        "description": "Piano, synthesizers; doors 19:00.",
        "url": "https://evently.example/events/nils-frahm",
        "timezone": "Europe/Berlin",
    }
    fields.update(overrides)
    return EventView(**fields)  # type: ignore[arg-type]


def make_tickets(event: EventView, n: int, holder: str = "Łukasz Żółć") -> list[TicketView]:
    private, _ = generate_keypair()
    booking_id = uuid.uuid4()
    tickets = []
    for seat in range(1, n + 1):
        ticket_id = uuid.uuid4()
        claims = TicketClaims(ticket_id, event.event_id, seat, START - timedelta(days=7))
        tickets.append(
            TicketView(
                ticket_id=ticket_id,
                booking_id=booking_id,
                secret=sign_ticket(private, claims),
                holder_name=holder,
                seat_label=f"Seat {seat}",
                ticket_type="General admission",
            )
        )
    return tickets


def decode_all(image: Image.Image) -> list[str]:
    return [
        r.text
        for r in zxingcpp.read_barcodes(
            image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
        )
    ]


def pdf_pages(pdf: bytes, dpi: float) -> list[Image.Image]:
    doc = pdfium.PdfDocument(pdf)
    return [doc[i].render(scale=dpi / 72).to_pil() for i in range(len(doc))]


def test_pdf_qr_codes_decode_and_verify_with_the_public_key_alone() -> None:
    private, public = generate_keypair()
    scanner_key = load_public_key(public_key_pem(public))  # all a door scanner holds
    event = make_event()
    booking_id = uuid.uuid4()
    tickets = []
    for seat in (7, 8, 9):
        claims = TicketClaims(uuid.uuid4(), event.event_id, seat, datetime.now(UTC))
        tickets.append(
            TicketView(
                claims.ticket_id, booking_id, sign_ticket(private, claims), "Ada", f"Seat {seat}"
            )
        )

    pages = pdf_pages(tickets_pdf(event, tickets), dpi=100)

    assert len(pages) == 3
    for page, ticket in zip(pages, tickets, strict=True):
        (text,) = decode_all(page)
        claims = verify_ticket(scanner_key, text)
        assert claims.ticket_id == ticket.ticket_id
        assert claims.event_id == event.event_id


def test_pdf_qr_still_decodes_from_a_coarse_render() -> None:
    """72 dpi, about what a phone screen shows of an A4 page viewed whole."""
    event = make_event()
    tickets = make_tickets(event, 1)
    (page,) = pdf_pages(tickets_pdf(event, tickets), dpi=72)
    assert decode_all(page) == [tickets[0].secret]


def test_pdf_pages_carry_the_ticket_details() -> None:
    event = make_event()
    tickets = make_tickets(event, 2)
    doc = pdfium.PdfDocument(tickets_pdf(event, tickets))
    for i, ticket in enumerate(tickets):
        textpage = doc[i].get_textpage()
        text = textpage.get_text_range()
        for expected in (
            "Nils Frahm — Live",
            "Fri 04 Dec 2026, 19:30 \N{EN DASH} 23:00 (Europe/Berlin)",
            "Philharmonie, Herbert-von-Karajan-Str. 1, Berlin",
            f"Seat {i + 1}",
            "General admission",
            "Łukasz Żółć",
            str(ticket.booking_id),
            str(ticket.ticket_id),
            f"{i + 1} of 2",
        ):
            assert expected in text, (expected, text)


def test_pdf_without_a_unicode_font_falls_back_to_latin1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(render, "_unicode_font", lambda: None)
    event = make_event(name="Łódź Jazz — Zoë's night")
    tickets = make_tickets(event, 1, holder="王芳")
    (page,) = pdf_pages(tickets_pdf(event, tickets), dpi=100)
    assert decode_all(page) == [tickets[0].secret]


def test_pdf_needs_a_ticket() -> None:
    with pytest.raises(ValueError, match="at least one"):
        tickets_pdf(make_event(), [])


@pytest.mark.filterwarnings("ignore:.*viewBox")
def test_svg_qr_decodes_after_rasterising_the_served_document() -> None:
    """The .svg we serve, drawn by fpdf2's SVG renderer into a PDF and rasterised by PDFium."""
    event = make_event()
    (ticket,) = make_tickets(event, 1)
    svg = qr_svg(ticket.secret)
    assert svg.startswith("<?xml")
    assert 'xmlns="http://www.w3.org/2000/svg"' in svg

    pdf = FPDF(unit="mm", format=(100, 100))
    pdf.add_page()
    pdf.image(io.BytesIO(svg.encode()), x=10, y=10, w=80, h=80)
    (page,) = pdf_pages(bytes(pdf.output()), dpi=150)
    assert decode_all(page) == [ticket.secret]


def test_png_qr_decodes() -> None:
    event = make_event()
    (ticket,) = make_tickets(event, 1)
    image = Image.open(io.BytesIO(qr_png(ticket.secret, scale=4)))
    assert decode_all(image.convert("L")) == [ticket.secret]


@pytest.mark.parametrize(("with_type", "version"), [(False, 7), (True, 8)])
def test_qr_stays_small(with_type: bool, version: int) -> None:
    private, _ = generate_keypair()
    claims = TicketClaims(uuid.uuid4(), uuid.uuid4(), 1, START, uuid.uuid4() if with_type else None)
    qr = make_qr(sign_ticket(private, claims))
    assert qr.mode == "alphanumeric"
    assert qr.version == version
    assert qr.error in ("M", "Q")


def test_ics_round_trip() -> None:
    event = make_event()
    stamp = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    ics = event_ics(event, domain="tickets.evently.example", dtstamp=stamp)
    assert ics == event_ics(event, domain="tickets.evently.example", dtstamp=stamp)
    assert b"\r\n" in ics
    assert b"DTSTART:20261204T183000Z" in ics

    cal = Calendar.from_ical(ics)
    assert str(cal["VERSION"]) == "2.0"
    assert str(cal["METHOD"]) == "PUBLISH"
    (vevent,) = cal.walk("VEVENT")
    assert str(vevent["UID"]) == f"event-{event.event_id}@tickets.evently.example"
    assert vevent.decoded("DTSTART") == event.starts_at
    assert vevent.decoded("DTSTART").tzinfo is not None
    assert vevent.decoded("DTSTART").utcoffset() == timedelta(0)
    assert vevent.decoded("DTEND") == event.ends_at
    assert vevent.decoded("DTSTAMP") == stamp
    assert str(vevent["SUMMARY"]) == "Nils Frahm — Live"
    assert str(vevent["LOCATION"]) == "Philharmonie, Herbert-von-Karajan-Str. 1, Berlin"
    assert str(vevent["DESCRIPTION"]) == "Piano, synthesizers; doors 19:00."
    assert str(vevent["URL"]) == "https://evently.example/events/nils-frahm"
    assert str(vevent["STATUS"]) == "CONFIRMED"
    assert vevent.decoded("SEQUENCE") == 0


def test_ics_uid_is_stable_and_a_cancellation_updates_the_same_entry() -> None:
    event = make_event(url=None, description="")
    cancelled = EventView(
        **{**{f: getattr(event, f) for f in event.__slots__}, "cancelled": True, "sequence": 1}
    )
    first = Calendar.from_ical(event_ics(event)).walk("VEVENT")[0]
    second = Calendar.from_ical(event_ics(cancelled)).walk("VEVENT")[0]
    assert str(first["UID"]) == str(second["UID"]) == event_uid(event.event_id)
    assert "URL" not in first
    assert "DESCRIPTION" not in first
    assert str(second["STATUS"]) == "CANCELLED"
    assert second.decoded("SEQUENCE") == 1
