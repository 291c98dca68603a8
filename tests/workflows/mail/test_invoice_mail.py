"""Issue 31: the invoice rides on the confirmation email and each refund's credit note on its
refund email (application/pdf, ``<number>.pdf``), end to end on the real stack: booking →
invoice and notice in one statement → outbox → SMTP (aiosmtpd) → the PDF's extracted text.
A refund notice written before its credit note (the refund is recorded before the seats are
released) waits for it rather than going out without it."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from evently.infra.resources import Resources
from evently.mail import outbox
from evently.mail.render import RefundIssued
from tests.support.factories import make_account, make_event
from tests.support.mail import MailStack
from tests.support.stripe import rows
from tests.support.tickets import confirmed_booking, pdf_text, wait_for

pytestmark = pytest.mark.usefixtures("running_workers")


async def _notices(res: Resources, booking_id: str) -> list[Any]:
    return await rows(
        res,
        "SELECT id, kind, mail_status FROM notifications WHERE booking_id = :b ORDER BY created_at",
        b=booking_id,
    )


async def _documents(client: httpx.AsyncClient, booking_id: str, headers: Any) -> Any:
    r = await client.get(f"/api/v1/bookings/{booking_id}/invoices", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _pdf_attachment(stack: MailStack, notification_id: uuid.UUID, filename: str) -> str:
    raw = stack.eml(notification_id).read_bytes()
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    found = [p for p in msg.iter_attachments() if p.get_filename() == filename]
    assert len(found) == 1, [p.get_filename() for p in msg.iter_attachments()]
    assert found[0].get_content_type() == "application/pdf"
    pdf = found[0].get_payload(decode=True)
    assert isinstance(pdf, bytes)
    body = msg.get_body(("plain",))
    assert body is not None
    assert filename.removesuffix(".pdf") in body.get_content()
    return pdf_text(pdf)


async def test_confirmation_carries_the_invoice_and_refunds_their_credit_notes(
    client: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    res = mail_stack.res
    buyer = await make_account(res)
    event = await make_event(res, capacity=10, price=Decimal("30.00"))
    c = await confirmed_booking(client, res, quantity=2, event=event, buyer=buyer)

    async def mailed(kind: str, count: int) -> bool:
        rows = [n for n in await _notices(res, c.booking_id) if n.kind == kind]
        return len(rows) == count and all(n.mail_status == "sent" for n in rows)

    await wait_for(lambda: mailed("booking_confirmed", 1), seconds=60)
    (invoice,) = await _documents(client, c.booking_id, buyer.headers)
    assert (invoice["kind"], invoice["total"]) == ("invoice", "60.00")
    (confirmed,) = [n for n in await _notices(res, c.booking_id) if n.kind == "booking_confirmed"]
    words = _pdf_attachment(mail_stack, confirmed.id, f"{invoice['number']}.pdf")
    assert f"Invoice {invoice['number']}" in words
    assert "60.00 EUR" in words

    # one seat cancelled: the partial refund's mail carries that change's credit note
    async with res.engine.connect() as conn:
        type_id = await conn.scalar(
            text("SELECT id FROM ticket_types WHERE event_id = :e AND is_default"),
            {"e": event.id},
        )
    r = await client.post(
        f"/api/v1/bookings/{c.booking_id}/cancel-lines",
        json={"lines": [{"ticket_type_id": str(type_id), "quantity": 1}]},
        headers=buyer.headers,
    )
    assert r.status_code == 200, r.text
    await wait_for(lambda: mailed("refund_issued", 1), seconds=60)
    # ... then the rest: the whole cancellation's credit note on the second refund mail
    r = await client.delete(f"/api/v1/bookings/{c.booking_id}", headers=buyer.headers)
    assert r.status_code == 200, r.text
    await wait_for(lambda: mailed("refund_issued", 2), seconds=60)

    docs = await _documents(client, c.booking_id, buyer.headers)
    assert [(d["kind"], d["total"]) for d in docs] == [
        ("invoice", "60.00"),
        ("credit_note", "30.00"),
        ("credit_note", "30.00"),
    ]
    refunds = [n for n in await _notices(res, c.booking_id) if n.kind == "refund_issued"]
    for notice, doc in zip(refunds, docs[1:], strict=True):
        words = _pdf_attachment(mail_stack, notice.id, f"{doc['number']}.pdf")
        assert f"Credit note {doc['number']}" in words
        assert f"Refers to invoice {invoice['number']}" in words
        assert "30.00 EUR" in words
        assert mail_stack.deliveries(notice.id) == 1
    assert mail_stack.deliveries(confirmed.id) == 1


async def test_a_refund_mail_waits_for_its_credit_note(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    """The refund is recorded (with its notice) before the release issues the credit note:
    composed in between, the mail is not ready; it goes without the note only once the wait
    is over (the release never came)."""
    c = await confirmed_booking(client, resources, quantity=1)
    async with resources.engine.begin() as conn:
        # the whole refund's notice as records.record_refund writes it, the booking still
        # confirmed: the release (and its credit note) has not run yet
        await conn.execute(
            text(
                "INSERT INTO notifications (id, user_id, kind, dedupe_key, booking_id, payload, "
                "mail_status) SELECT gen_random_uuid(), user_id, 'refund_issued', :k, id, "
                "jsonb_build_object('amount', '30.00', 'currency', 'EUR'), 'skipped' "
                "FROM bookings WHERE id = :b"
            ),
            {"b": c.booking_id, "k": f"test:{c.booking_id}:refund"},
        )
        row = (
            await conn.execute(
                text(
                    "SELECT id, kind, user_id, booking_id, waitlist_entry_id, payload, "
                    "created_at FROM notifications WHERE dedupe_key = :k"
                ),
                {"k": f"test:{c.booking_id}:refund"},
            )
        ).one()
        notice = outbox.Claimed(
            id=row.id,
            kind=row.kind,
            user_id=row.user_id,
            booking_id=row.booking_id,
            waitlist_entry_id=None,
            payload=dict(row.payload),
            created_at=row.created_at,
            attempts=1,
        )
        assert isinstance(await outbox.compose(conn, notice, resources.settings), outbox.Later)
        # a partial refund whose change is unknown (or done) does not wait
        other = dataclasses.replace(notice, payload={**notice.payload, "change": 7})
        composed = await outbox.compose(conn, other, resources.settings)
        assert isinstance(composed, outbox.Composed)
        assert isinstance(composed.mail, RefundIssued)
        assert composed.mail.credit_note is None
        # past the wait the mail goes without it
        old = dataclasses.replace(
            notice,
            created_at=datetime.now(UTC) - timedelta(seconds=outbox.CREDIT_NOTE_WAIT_SECONDS + 1),
        )
        composed = await outbox.compose(conn, old, resources.settings)
        assert isinstance(composed, outbox.Composed)
        assert isinstance(composed.mail, RefundIssued)
        assert composed.mail.credit_note is None
