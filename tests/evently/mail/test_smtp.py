"""Delivery over real SMTP: the aiosmtpd dev server receives, a door scanner reads the ticket."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pytest
import zxingcpp
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from icalendar import Calendar

from evently.mail.devserver import DevMailServer, dev_mail_server, eml_name
from evently.mail.render import BookingConfirmed, HoldExpired, build_message
from evently.mail.smtp import (
    MailDeliveryError,
    MailRejected,
    MailServerUnavailable,
    parse_smtp_url,
    send,
)
from evently.tickets.render import EventView, TicketView
from evently.tickets.signing import (
    TicketClaims,
    generate_keypair,
    load_public_key,
    public_key_b64,
    sign_ticket,
    verify_ticket,
)

SENDER = "Evently <tickets@evently.example>"
START = datetime(2026, 12, 4, 18, 30, tzinfo=UTC)


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[DevMailServer]:
    with dev_mail_server(tmp_path / "mail") as server:
        yield server


def confirmation(n_tickets: int) -> tuple[EmailMessage, str, list[uuid.UUID]]:
    """A confirmation mail, the scanner's public key (base64) and the ticket ids."""
    private, public = generate_keypair()
    event = EventView(
        uuid.uuid4(), "Door test", START, START + timedelta(hours=2), "Hall 1", city="Leipzig"
    )
    booking_id = uuid.uuid4()
    tickets = []
    for seat in range(1, n_tickets + 1):
        claims = TicketClaims(uuid.uuid4(), event.event_id, seat, datetime.now(UTC))
        secret = sign_ticket(private, claims)
        tickets.append(TicketView(claims.ticket_id, booking_id, secret, "Ada", f"Seat {seat}"))
    mail = BookingConfirmed(event, booking_id, "Ada", tickets, Decimal("20.00"), "EUR")
    msg = build_message(
        mail, notification_id=uuid.uuid4(), to="Ada <ada@example.com>", sender=SENDER
    )
    return msg, public_key_b64(public), [t.ticket_id for t in tickets]


def read_eml(path: Path) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(path.read_bytes())


async def test_confirmation_arrives_and_its_pdf_qr_verifies_with_the_public_key(
    mail_server: DevMailServer,
) -> None:
    msg, scanner_key_b64, ticket_ids = confirmation(2)

    reply = await send(msg, mail_server.url)
    assert reply == "Message accepted for delivery"

    (path,) = mail_server.paths()
    assert path.name == f"{msg['Message-ID'].strip('<>')}.eml"
    received = read_eml(path)
    assert received["Message-ID"] == msg["Message-ID"]
    assert received["Subject"] == "Your 2 tickets for Door test"
    assert received["To"] == "Ada <ada@example.com>"

    pdfs = [p for p in received.iter_attachments() if p.get_content_type() == "application/pdf"]
    (pdf_part,) = pdfs
    pdf = pdf_part.get_payload(decode=True)
    assert isinstance(pdf, bytes)

    scanner_key = load_public_key(scanner_key_b64)  # the only thing a door scanner holds
    doc = pdfium.PdfDocument(pdf)
    seen = []
    for i in range(len(doc)):
        image = doc[i].render(scale=100 / 72).to_pil()
        (barcode,) = zxingcpp.read_barcodes(image)
        assert barcode.format == zxingcpp.BarcodeFormat.QRCode
        seen.append(verify_ticket(scanner_key, barcode.text).ticket_id)
    assert seen == ticket_ids

    (ics_part,) = [p for p in received.iter_attachments() if p.get_filename() == "event.ics"]
    ics = ics_part.get_payload(decode=True)
    assert isinstance(ics, bytes)
    (vevent,) = Calendar.from_ical(ics).walk("VEVENT")
    assert str(vevent["SUMMARY"]) == "Door test"


async def test_a_resent_notification_is_the_same_message(mail_server: DevMailServer) -> None:
    msg, _, _ = confirmation(1)
    other = build_message(
        HoldExpired(
            EventView(uuid.uuid4(), "Other", START, START + timedelta(hours=1), "Hall 2"),
            uuid.uuid4(),
            "Bob",
            1,
            START,
        ),
        notification_id=uuid.uuid4(),
        to="bob@example.com",
        sender=SENDER,
    )

    await send(msg, mail_server.url)
    await send(msg, mail_server.url)  # an activity retried after the server had accepted
    await send(other, mail_server.url)

    assert mail_server.handler.received == 3
    assert sorted(m["Message-ID"] for m in mail_server.messages()) == sorted(
        [msg["Message-ID"], other["Message-ID"]]
    )


async def test_a_stopped_server_is_a_retryable_error_and_mail_flows_when_it_returns(
    tmp_path: Path,
) -> None:
    server = DevMailServer(tmp_path / "mail")
    server.start()
    server.stop()
    msg, _, _ = confirmation(1)

    with pytest.raises(MailServerUnavailable, match="unreachable") as caught:
        await send(msg, server.url, command_timeout=2)
    assert caught.value.retryable

    server.start()  # same port as before
    try:
        await send(msg, server.url)
        assert len(server.paths()) == 1
    finally:
        server.stop()


async def test_a_server_that_never_answers_times_out_as_retryable() -> None:
    with socket.socket() as listener:  # accepts the TCP connection, never says hello
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        msg, _, _ = confirmation(1)
        with pytest.raises(MailServerUnavailable):
            await send(msg, f"smtp://127.0.0.1:{port}", command_timeout=0.5)


class _Refusing:
    def __init__(self, code: str) -> None:
        self.code = code

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return self.code


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ("550 5.1.1 no such user", MailRejected),
        ("451 4.3.0 try again later", MailServerUnavailable),
    ],
)
async def test_refusals_map_to_permanent_or_temporary(
    answer: str, error: type[MailDeliveryError]
) -> None:
    controller = Controller(_Refusing(answer), hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        msg, _, _ = confirmation(1)
        with pytest.raises(error, match=answer.split()[0]) as caught:
            await send(msg, f"smtp://127.0.0.1:{controller.port}")
        assert caught.value.retryable is (error is MailServerUnavailable)
    finally:
        controller.stop()


async def test_credentials_in_the_url_log_in(mail_server: DevMailServer) -> None:
    msg, _, _ = confirmation(1)
    await send(msg, f"smtp://evently:s%40cret@{mail_server.host}:{mail_server.port}")
    assert len(mail_server.paths()) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_smtp_urls() -> None:
    plain = parse_smtp_url("smtp://localhost:1025")
    assert (plain.hostname, plain.port, plain.use_tls, plain.start_tls) == (
        "localhost",
        1025,
        False,
        False,
    )
    starttls = parse_smtp_url("smtp+starttls://user%40example.com:p%3Ass@mail.example.com")
    assert (starttls.port, starttls.start_tls, starttls.use_tls) == (587, True, False)
    assert (starttls.username, starttls.password) == ("user@example.com", "p:ss")
    assert "p:ss" not in repr(starttls)
    tls = parse_smtp_url("smtps://mail.example.com")
    assert (tls.port, tls.use_tls, tls.username) == (465, True, None)
    with pytest.raises(ValueError, match="scheme"):
        parse_smtp_url("http://mail.example.com")
    with pytest.raises(ValueError, match="host"):
        parse_smtp_url("smtp://")


def test_eml_names() -> None:
    assert eml_name(b"Message-ID: <abc-1@evently.example>\r\n\r\nhi") == "abc-1@evently.example.eml"
    assert eml_name(b"Message-ID: <../../etc/passwd>\r\n\r\n") == "_.._etc_passwd.eml"
    assert eml_name(b"Subject: none\r\n\r\n").startswith("no-message-id-")
