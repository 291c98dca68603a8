"""Sign-up mail on the real stack (issue 28): the API answers a new and a taken email alike;
the outbox mails the address a welcome, or "you already have an account", over SMTP
(aiosmtpd)."""

from __future__ import annotations

import uuid
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import httpx
from sqlalchemy import text

from evently.infra.resources import Resources
from tests.api.auth.helpers import AUTH, PASSWORD, sign_up
from tests.api.tickets.helpers import wait_for
from tests.factories import unique_email
from tests.workflows.mail.helpers import MailStack


async def _notices(res: Resources, email: str) -> list[Any]:
    async with res.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT n.id, n.kind, n.mail_status FROM notifications n "
                "JOIN users u ON u.id = n.user_id WHERE u.email = :e ORDER BY n.created_at"
            ),
            {"e": email},
        )
        return list(rows)


def _read(stack: MailStack, notification_id: uuid.UUID) -> EmailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(stack.eml(notification_id).read_bytes())
    assert isinstance(msg, EmailMessage)
    return msg


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def test_a_taken_email_gets_the_same_answer_and_a_you_already_have_an_account_mail(
    client: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    res = mail_stack.res
    email = unique_email("mail-signup")
    new = await sign_up(client, email, full_name="Ada Lovelace")
    taken = await sign_up(client, email, "someone-elses-password")
    assert taken.status_code == new.status_code == 202
    assert taken.json() == new.json()
    assert taken.headers["content-length"] == new.headers["content-length"]

    async def both_sent() -> bool:
        rows = await _notices(res, email)
        return len(rows) == 2 and all(r.mail_status == "sent" for r in rows)

    await wait_for(both_sent, seconds=30)
    welcome, exists = await _notices(res, email)
    assert (welcome.kind, exists.kind) == ("account_welcome", "account_exists")

    msg = _read(mail_stack, welcome.id)
    assert email in msg["To"]
    assert msg["Subject"] == "Welcome to Evently"
    assert "Hi Ada Lovelace" in _text(msg)
    assert "/login" in _text(msg)

    msg = _read(mail_stack, exists.id)
    assert email in msg["To"]
    assert msg["Subject"] == "You already have an Evently account"
    body = _text(msg)
    assert "you already have an account" in body
    assert "/login" in body
    assert "reset" in body  # the hint for a forgotten password
    html = msg.get_body(preferencelist=("html",))
    assert html is not None
    assert "you already have an account" in str(html.get_content())
    # nothing but the mail: the account and its password are as they were
    r = await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["full_name"] == "Ada Lovelace"
