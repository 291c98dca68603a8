"""Email from the outbox, end to end on the real stack: booking → notice (same transaction) →
dispatcher → SMTP (aiosmtpd) → a PDF whose QR a scanner verifies with the public key alone.
An SMTP outage delays mail and loses none; every notice is delivered exactly once."""

from __future__ import annotations

import asyncio
import uuid
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import httpx
import pytest
from icalendar import Calendar
from sqlalchemy import text
from temporalio.client import Client

from evently.infra.resources import Resources
from tests.support.door import door_member
from tests.support.factories import make_account, make_event
from tests.support.mail import MailStack
from tests.support.tickets import (
    confirmed_booking,
    decode_pdf,
    new_nonce,
    scanner_verify,
    tickets_of,
    wait_for,
)
from workflows.mail.client import outbox_state

pytestmark = pytest.mark.usefixtures("running_workers")


async def notices(res: Resources, user_ids: list[uuid.UUID]) -> list[Any]:
    async with res.engine.connect() as conn:
        rows = await conn.execute(
            text(
                """SELECT id, kind, booking_id, mail_status, mail_attempts, mailed_at, mail_error
                   FROM notifications WHERE user_id = ANY(:u) ORDER BY created_at"""
            ),
            {"u": user_ids},
        )
        return list(rows)


def read_eml(stack: MailStack, notification_id: uuid.UUID) -> EmailMessage:
    raw = stack.eml(notification_id).read_bytes()
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg


async def test_confirm_mails_tickets_a_scanner_verifies_with_the_public_key_alone(
    client: httpx.AsyncClient, mail_stack: MailStack, temporal_client: Client
) -> None:
    res = mail_stack.res
    buyer = await make_account(res)
    c = await confirmed_booking(client, res, quantity=2, buyer=buyer)
    tickets = await tickets_of(client, c)

    async def sent() -> bool:
        rows = await notices(res, [buyer.id])
        return any(n.kind == "booking_confirmed" and n.mail_status == "sent" for n in rows)

    await wait_for(sent, seconds=30)
    (notice,) = [n for n in await notices(res, [buyer.id]) if n.kind == "booking_confirmed"]
    assert notice.mailed_at is not None
    assert notice.mail_attempts == 1

    msg = read_eml(mail_stack, notice.id)
    assert msg["Message-ID"] == f"<{notice.id}@{mail_stack.domain()}>"
    assert msg["X-Evently-Notification-Id"] == str(notice.id)
    assert buyer.user.email in msg["To"]
    assert msg["Subject"] == f"Your 2 tickets for {c.event.name}"
    pdfs = {
        p.get_filename(): p
        for p in msg.iter_attachments()
        if p.get_content_type() == "application/pdf"
    }
    # the tickets, and the invoice (issue 31; tests/workflows/mail/test_invoice_mail.py)
    assert len(pdfs) == 2, list(pdfs)
    pdf = pdfs[f"tickets-{c.booking_id}.pdf"].get_payload(decode=True)
    assert isinstance(pdf, bytes)
    secrets = decode_pdf(pdf)  # zxing-cpp reads what PDFium draws
    assert len(secrets) == 2
    claims = [await scanner_verify(client, s) for s in secrets]  # public key only
    assert [str(cl.ticket_id) for cl in claims] == [t["id"] for t in tickets]
    assert {cl.event_id for cl in claims} == {c.event.id}
    (ics_part,) = [p for p in msg.iter_attachments() if p.get_filename() == "event.ics"]
    ics = ics_part.get_payload(decode=True)
    assert isinstance(ics, bytes)
    (vevent,) = Calendar.from_ical(ics).walk("VEVENT")
    assert str(vevent["SUMMARY"]) == c.event.name

    # the mailed ticket gets in, once
    staff = await door_member(res)
    body = {"secret": secrets[0], "nonce": new_nonce(), "device_id": "gate-1"}
    r = await client.post("/api/v1/checkin/redeem", json=body, headers=staff.headers)
    assert r.status_code == 200, r.text
    assert mail_stack.deliveries(notice.id) == 1
    state = await outbox_state(temporal_client, mail_stack.workflow_id)
    assert state.delivered >= 1


async def test_an_smtp_outage_delays_mail_and_loses_none(
    client: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    res = mail_stack.res
    server = mail_stack.server
    server.stop()  # the mail server goes away as the sale starts

    event = await make_event(res, capacity=40)
    buyers = [await make_account(res) for _ in range(8)]
    booked = await asyncio.gather(
        *(confirmed_booking(client, res, quantity=1, event=event, buyer=b) for b in buyers)
    )
    for c in booked[:2]:  # two buyers change their minds: refunds
        r = await client.delete(f"/api/v1/bookings/{c.booking_id}", headers=c.buyer.headers)
        assert r.status_code == 200, r.text
    user_ids = [b.id for b in buyers]

    async def every_mailable_notice_tried() -> bool:
        rows = await notices(res, user_ids)
        kinds = [n.kind for n in rows]
        mailable = [n for n in rows if n.kind in ("booking_confirmed", "refund_issued")]
        return kinds.count("refund_issued") == 2 and all(
            n.mail_status == "skipped"
            or (n.mail_status == "pending" and "unreachable" in (n.mail_error or ""))
            for n in mailable
        )

    await wait_for(every_mailable_notice_tried, seconds=60)  # each tried, refused, kept
    assert server.handler.received == 0
    pending = [n for n in await notices(res, user_ids) if n.mail_status == "pending"]
    assert len(pending) >= 8, "the outage held mail back"  # 6 confirmations + 2 refunds

    server.start()  # back, on the same port

    async def settled() -> bool:
        return all(n.mail_status != "pending" for n in await notices(res, user_ids))

    await wait_for(settled, seconds=60)
    rows = await notices(res, user_ids)
    cancelled = {uuid.UUID(c.booking_id) for c in booked[:2]}
    expected_sent = {
        n.id
        for n in rows
        if (n.kind == "booking_confirmed" and n.booking_id not in cancelled)
        or n.kind == "refund_issued"
    }
    assert len(expected_sent) == 6 + 2
    assert {n.id for n in rows if n.mail_status == "sent"} == expected_sent
    # counted: every notice arrived exactly once (one SMTP delivery per Message-ID) ...
    assert {nid: mail_stack.deliveries(nid) for nid in expected_sent} == {
        nid: 1 for nid in expected_sent
    }
    # ... and nothing else of theirs was sent: the cancelled bookings' confirmations (their
    # tickets were revoked before the server returned) and the cancellation notices are skipped
    for n in rows:
        if n.id not in expected_sent:
            assert n.mail_status == "skipped", n
            assert mail_stack.deliveries(n.id) == 0
