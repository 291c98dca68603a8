"""Buyer emails: headers, both bodies, attachments, escaping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage

import pytest
from icalendar import Calendar

from evently.mail.render import (
    BookingConfirmed,
    EventCancelled,
    HoldExpired,
    Mail,
    RefundIssued,
    WaitlistOffer,
    build_message,
    message_id,
)
from evently.tickets.render import EventView, TicketView

START = datetime(2026, 12, 4, 18, 30, tzinfo=UTC)
SENDER = "Evently <tickets@evently.example>"
EVENT = EventView(
    event_id=uuid.UUID("0b8f2c4e-8d1a-4e57-9b51-2f1f0c3d9a10"),
    name="Nils Frahm & Friends",
    starts_at=START,
    ends_at=START + timedelta(hours=3),
    venue_name="Philharmonie",
    city="Berlin",
    timezone="Europe/Berlin",
)
BOOKING = uuid.UUID("5b2e7f10-1111-4222-8333-944455556666")


def ticket(seat: int) -> TicketView:
    return TicketView(uuid.uuid4(), BOOKING, "EVT1.NOTREAL", "Ada", f"Seat {seat}", "Standing")


MAILS: dict[str, Mail] = {
    "booking_confirmed": BookingConfirmed(
        EVENT, BOOKING, "Ada", [ticket(1), ticket(2)], Decimal("98.00"), "eur"
    ),
    "hold_expired": HoldExpired(EVENT, BOOKING, "Ada", 2, START - timedelta(days=3)),
    "waitlist_offer": WaitlistOffer(
        EVENT, "Ada", 1, "https://evently.example/w/1/accept?x=1&y=2", START - timedelta(days=2)
    ),
    "refund_issued": RefundIssued(EVENT, BOOKING, "Ada", Decimal("49.00"), "EUR"),
    "event_cancelled": EventCancelled(EVENT, BOOKING, "Ada", Decimal("98.00"), "EUR"),
}


def bodies(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    return text.get_content(), html.get_content()


def attachments(msg: EmailMessage) -> dict[str, tuple[str, bytes]]:
    out = {}
    for part in msg.iter_attachments():
        assert isinstance(part, EmailMessage)
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        out[str(part.get_filename())] = (part.get_content_type(), payload)
    return out


@pytest.mark.parametrize("kind", sorted(MAILS))
def test_every_mail_has_stable_headers_and_both_bodies(kind: str) -> None:
    mail = MAILS[kind]
    notification_id = uuid.uuid4()
    date = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    msg = build_message(
        mail, notification_id=notification_id, to="Ada <ada@example.com>", sender=SENDER, date=date
    )

    assert msg["Message-ID"] == f"<{notification_id}@evently.example>"
    assert msg["From"] == SENDER
    assert msg["To"] == "Ada <ada@example.com>"
    assert msg["Date"] == "Fri, 27 Nov 2026 12:00:00 +0000"
    assert msg["Subject"] == mail.subject
    assert "Nils Frahm & Friends" in msg["Subject"]
    assert msg["Auto-Submitted"] == "auto-generated"

    text, html = bodies(msg)
    assert "Hi Ada," in text
    assert "Nils Frahm & Friends" in text  # text is not HTML-escaped
    assert "Nils Frahm &amp; Friends" in html  # HTML is
    assert "Fri 04 Dec 2026, 19:30" in text  # shown in the event's zone


def test_confirmation_attaches_the_pdf_and_the_calendar() -> None:
    msg = build_message(
        MAILS["booking_confirmed"], notification_id="n-1", to="ada@example.com", sender=SENDER
    )
    text, _ = bodies(msg)
    assert "2 tickets for Nils Frahm & Friends, 98.00 EUR paid" in text
    assert f"Booking reference: {BOOKING}" in text
    files = attachments(msg)
    assert set(files) == {f"tickets-{BOOKING}.pdf", "event.ics"}
    content_type, pdf = files[f"tickets-{BOOKING}.pdf"]
    assert content_type == "application/pdf"
    assert pdf.startswith(b"%PDF-")
    content_type, ics = files["event.ics"]
    assert content_type == "text/calendar"
    (vevent,) = Calendar.from_ical(ics).walk("VEVENT")
    assert str(vevent["STATUS"]) == "CONFIRMED"


def test_cancellation_attaches_a_calendar_update_that_cancels_the_same_entry() -> None:
    confirmed = build_message(
        MAILS["booking_confirmed"], notification_id="n-1", to="ada@example.com", sender=SENDER
    )
    cancelled = build_message(
        MAILS["event_cancelled"], notification_id="n-2", to="ada@example.com", sender=SENDER
    )
    (before,) = Calendar.from_ical(attachments(confirmed)["event.ics"][1]).walk("VEVENT")
    (after,) = Calendar.from_ical(attachments(cancelled)["event.ics"][1]).walk("VEVENT")
    assert str(after["UID"]) == str(before["UID"])
    assert str(after["STATUS"]) == "CANCELLED"
    assert after.decoded("SEQUENCE") > before.decoded("SEQUENCE")
    text, _ = bodies(cancelled)
    assert "98.00 EUR is being refunded" in text


def test_waitlist_offer_carries_the_link_and_the_deadline() -> None:
    msg = build_message(
        MAILS["waitlist_offer"], notification_id="n-3", to="ada@example.com", sender=SENDER
    )
    text, html = bodies(msg)
    assert "https://evently.example/w/1/accept?x=1&y=2" in text
    assert 'href="https://evently.example/w/1/accept?x=1&amp;y=2"' in html
    assert "until Wed 02 Dec 2026, 19:30 (Europe/Berlin)" in text
    assert not list(msg.iter_attachments())


def test_buyer_input_is_escaped_in_html() -> None:
    mail = RefundIssued(EVENT, BOOKING, "<script>alert(1)</script>", Decimal("1"), "EUR")
    msg = build_message(mail, notification_id="n-4", to="x@example.com", sender=SENDER)
    _, html = bodies(msg)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_message_id_domain() -> None:
    assert message_id("abc", "mail.example") == "<abc@mail.example>"
    msg = build_message(
        MAILS["refund_issued"],
        notification_id="n-5",
        to="x@example.com",
        sender=SENDER,
        domain="notify.example",
    )
    assert msg["Message-ID"] == "<n-5@notify.example>"
    with pytest.raises(ValueError, match="domain"):
        build_message(MAILS["refund_issued"], notification_id="n", to="x@e.com", sender="nobody")


def test_a_refund_amount_needs_a_currency() -> None:
    with pytest.raises(ValueError, match="currency"):
        EventCancelled(EVENT, BOOKING, "Ada", Decimal("1"))
