"""Sign-up mail on the real stack (issue 28): the API answers a new and a taken email alike;
the outbox mails the address a welcome, or "you already have an account", over SMTP
(aiosmtpd)."""

from __future__ import annotations

import re
import uuid
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import httpx
from sqlalchemy import text

from evently.infra.resources import Resources
from tests.support.auth import AUTH, PASSWORD, PROFILE, bearer, log_in, sign_up
from tests.support.factories import unique_email
from tests.support.mail import MailStack
from tests.support.tickets import wait_for


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
    assert "/verify-email?token=" in _text(msg)  # issue 32: the verification link

    msg = _read(mail_stack, exists.id)
    assert email in msg["To"]
    assert msg["Subject"] == "You already have an Evently account"
    body = _text(msg)
    assert "you already have an account" in body
    assert "/login" in body
    assert "reset" in body  # the hint for a forgotten password
    assert "/forgot-password" in body  # issue 32: the password reset page
    assert "/verify-email" not in body
    html = msg.get_body(preferencelist=("html",))
    assert html is not None
    assert "you already have an account" in str(html.get_content())
    # nothing but the mail: the account and its password are as they were
    r = await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["full_name"] == "Ada Lovelace"


def _link(body: str, path: str) -> str:
    """The token of the mail's ``{public url}{path}?token=…`` link."""
    found = re.search(re.escape(path) + r"\?token=([A-Za-z0-9_-]+)", body)
    assert found, body
    return found.group(1)


async def _mail_of(res: Resources, email: str, kind: str, stack: MailStack) -> EmailMessage:
    async def sent() -> bool:
        return any(r.kind == kind and r.mail_status == "sent" for r in await _notices(res, email))

    await wait_for(sent, seconds=30)
    (notice,) = [r for r in await _notices(res, email) if r.kind == kind]
    return _read(stack, notice.id)


async def test_the_mailed_links_verify_the_address_and_reset_the_password_once(
    client: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    """Issue 32 end to end: the links as the mails carry them (SMTP, aiosmtpd)."""
    res = mail_stack.res
    email = unique_email("mail-links")
    await sign_up(client, email, full_name="Grace Hopper")
    welcome = _text(await _mail_of(res, email, "account_welcome", mail_stack))
    r = await client.post(f"{AUTH}/verify-email", json={"token": _link(welcome, "/verify-email")})
    assert r.status_code == 200, r.text

    r = await client.post(f"{AUTH}/password-reset", json={"email": email.upper()})
    assert r.status_code == 202, r.text
    msg = await _mail_of(res, email, "password_reset", mail_stack)
    assert msg["Subject"] == "Reset your Evently password"
    assert email in msg["To"]
    body = _text(msg)
    assert "within 30 minutes" in body
    assert "signed up" not in body  # the footer says why this mail came
    token = _link(body, "/reset-password")
    html = msg.get_body(preferencelist=("html",))
    assert html is not None
    assert token in str(html.get_content())
    confirm = {"token": token, "password": "a-brand-new-password"}
    r = await client.post(f"{AUTH}/password-reset/confirm", json=confirm)
    assert r.status_code == 200, r.text
    r = await client.post(f"{AUTH}/password-reset/confirm", json=confirm)
    assert r.status_code == 400
    assert r.json()["code"] == "reset_token_invalid"
    r = await client.post(
        f"{AUTH}/login", json={"email": email, "password": "a-brand-new-password"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["user"]["email_verified"] is True

    # an address without an account: the same answer, and no mail at all
    nobody = unique_email("mail-nobody")
    before = len(list(mail_stack.server.directory.glob("*.eml")))
    r = await client.post(f"{AUTH}/password-reset", json={"email": nobody})
    assert r.status_code == 202
    assert await _notices(res, nobody) == []
    assert len(list(mail_stack.server.directory.glob("*.eml"))) == before


async def test_a_changed_address_is_mailed_its_own_verification_link(
    client: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    """Issue 32: the new address must be proven before it claims guest bookings; the change
    itself mails it a link (SMTP, aiosmtpd), which verifies it."""
    res = mail_stack.res
    email = unique_email("mail-change")
    await sign_up(client, email, full_name="Ada Lovelace")
    pair = await log_in(client, email)
    new_email = unique_email("mail-changed")
    r = await client.put(
        PROFILE,
        json={"email": new_email, "current_password": PASSWORD},
        headers=bearer(pair["access_token"]),
    )
    assert r.status_code == 200, r.text
    msg = await _mail_of(res, new_email, "email_verification", mail_stack)
    assert new_email in msg["To"]
    assert msg["Subject"] == "Confirm your email address"
    body = _text(msg)
    assert "an Evently account asked to confirm this address" in body
    r = await client.post(f"{AUTH}/verify-email", json={"token": _link(body, "/verify-email")})
    assert r.status_code == 200, r.text
    assert (await log_in(client, new_email))["user"]["email_verified"] is True
