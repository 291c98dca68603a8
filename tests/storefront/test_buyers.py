"""Buyers in a real browser (issue 32), with the real mail (SMTP, aiosmtpd): account recovery
and verification — the welcome mail's link confirms the address, "forgot your password?"
mails a link that sets a new password once, opened in a fresh browser context; guest
checkout — a buyer without an account books, pays, opens the booking from the confirmation
mail's link in a fresh context and downloads the PDF; other and tampered links find nothing;
after verifying an account with that email the booking is in "My bookings". Every page is
screenshotted."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import text
from temporalio.client import Client

from evently.infra.resources import Resources
from evently.mail.devserver import DevMailServer
from tests.api.tickets.helpers import wait_for
from tests.factories import make_event, unique_email
from tests.servers import ApiURL
from tests.storefront.conftest import PHONE, PageProblems, new_page
from tests.workflows.mail.helpers import FAST, MailStack, mail_workers, quiet_outbox
from workflows.mail.client import ensure_outbox, stop_outbox

PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple battery horse correct"


@pytest.fixture
async def mail_stack(
    temporal_client: Client, resources: Resources, tmp_path: Path, task_queue: str
) -> AsyncIterator[MailStack]:
    """A real SMTP server and the mail outbox workflow on a private task queue."""
    server = DevMailServer(tmp_path / "mail")
    server.start()
    settings = resources.settings.model_copy(update={"smtp_url": server.url})
    res = dataclasses.replace(resources, settings=settings)
    await quiet_outbox(res)
    workflow_id = f"mail-outbox-{uuid.uuid4()}"
    try:
        async with mail_workers(temporal_client, res, task_queue):
            await ensure_outbox(
                temporal_client, FAST, workflow_id=workflow_id, task_queue=task_queue
            )
            try:
                yield MailStack(server, res, workflow_id)
            finally:
                await stop_outbox(temporal_client, workflow_id)
    finally:
        server.stop()


async def _mailed_link(stack: MailStack, email: str, kind: str, path: str) -> str:
    """The path and query of the ``path…?token=`` (or ``?key=``) link in the newest ``kind``
    mail to ``email``."""
    res = stack.res

    async def newest() -> uuid.UUID | None:
        async with res.engine.connect() as conn:
            found: uuid.UUID | None = await conn.scalar(
                text(
                    "SELECT n.id FROM notifications n JOIN users u ON u.id = n.user_id "
                    "WHERE u.email = :e AND n.kind = :k AND n.mail_status = 'sent' "
                    "ORDER BY n.created_at DESC LIMIT 1"
                ),
                {"e": email, "k": kind},
            )
        return found

    async def sent() -> bool:
        return await newest() is not None

    await wait_for(sent, seconds=30)
    notice = await newest()
    assert notice is not None
    msg = BytesParser(policy=policy.default).parsebytes(stack.eml(notice).read_bytes())
    assert isinstance(msg, EmailMessage)
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    found = re.search(
        r"https?://\S+" + re.escape(path) + r"\?(?:token|key)=[A-Za-z0-9_-]+",
        str(part.get_content()),
    )
    assert found, part.get_content()
    link = urlsplit(found.group(0))
    return f"{link.path}?{link.query}"


async def shot(page: Page, screenshots: Path, name: str) -> None:
    await page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


async def test_a_buyer_confirms_the_address_then_resets_a_forgotten_password(
    browser: Browser, storefront: ApiURL, mail_stack: MailStack, screenshots: Path
) -> None:
    email = unique_email("web-reset")
    async with httpx.AsyncClient(base_url=storefront) as api:
        body = {"email": email, "password": PASSWORD, "full_name": "Ada Lovelace"}
        assert (await api.post("/api/v1/auth/register", json=body)).status_code == 202

    # the welcome mail's link confirms the address (a button: nothing changes on the GET)
    page = await new_page(browser, storefront)
    problems = PageProblems(page)
    await page.goto(await _mailed_link(mail_stack, email, "account_welcome", "/verify-email"))
    await expect(page.get_by_role("heading", name="Confirm your email address")).to_be_visible()
    await shot(page, screenshots, "30-verify-email")
    await page.get_by_role("button", name="Confirm my email address").click()
    await expect(page.get_by_role("heading", name="Email address confirmed")).to_be_visible()
    await shot(page, screenshots, "31-verify-email-done")

    # forgot the password: from the log-in page
    await page.goto("/login")
    await page.get_by_role("link", name="Forgot your password?").click()
    await expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    await shot(page, screenshots, "32-forgot-password")
    await page.get_by_label("Email").fill(email.upper())
    await page.get_by_role("button", name="Send reset link").click()
    await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    await expect(page.locator("#notice")).to_contain_text("within 30 minutes")
    await shot(page, screenshots, "33-forgot-password-sent")
    problems.check()
    await page.context.close()

    # the mailed link, in a fresh browser (the phone that reads the mail)
    link = await _mailed_link(mail_stack, email, "password_reset", "/reset-password")
    phone = await new_page(browser, storefront, PHONE)
    problems = PageProblems(phone)
    await phone.goto(link)
    await expect(phone.get_by_role("heading", name="Choose a new password")).to_be_visible()
    await phone.get_by_label("New password").fill("short")
    await phone.get_by_role("button", name="Set new password").click()
    await expect(phone.locator("#form-error")).to_contain_text("at least 10 characters")
    await shot(phone, screenshots, "34-reset-password-weak")
    await phone.get_by_label("New password").fill(NEW_PASSWORD)  # the link still works
    await phone.get_by_role("button", name="Set new password").click()
    await expect(phone.get_by_role("heading", name="Password changed")).to_be_visible()
    await shot(phone, screenshots, "35-reset-password-done")
    # log in with the new password
    await phone.locator("#notice-link").click()
    await phone.get_by_label("Email").fill(email)
    await phone.get_by_label("Password").fill(NEW_PASSWORD)
    await phone.get_by_role("button", name="Log in").click()
    await expect(phone.get_by_role("button", name="Log out")).to_be_visible()
    # the link works once
    await phone.goto(link)
    await phone.get_by_label("New password").fill("yet another long password")
    await phone.get_by_role("button", name="Set new password").click()
    await expect(phone.locator("#form-error")).to_contain_text("already used")
    await shot(phone, screenshots, "36-reset-password-used")
    problems.check()
    await phone.context.close()

    async with httpx.AsyncClient(base_url=storefront) as api:
        r = await api.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 401
        r = await api.post("/api/v1/auth/login", json={"email": email, "password": NEW_PASSWORD})
        assert r.status_code == 200, r.text
        assert r.json()["user"]["email_verified"] is True


async def test_a_guest_buys_opens_the_mailed_link_elsewhere_and_claims_it_once_verified(
    browser: Browser,
    storefront: ApiURL,
    mail_stack: MailStack,
    resources: Resources,
    screenshots: Path,
    running_workers: None,
) -> None:
    event = await make_event(resources, capacity=10, name=f"Guest night {uuid.uuid4().hex[:6]}")
    email = unique_email("web-guest")
    page = await new_page(browser, storefront)
    problems = PageProblems(page)
    await page.goto(f"/events/{event.id}")
    await expect(page.locator("#availability")).to_have_text("10 of 10 seats available.")
    await page.get_by_label("Your name").fill("Grace Guest")
    await page.get_by_label("Your email").fill(email)
    await page.get_by_label("Number of seats").fill("2")
    await shot(page, screenshots, "40-event-guest")
    await page.get_by_role("button", name="Continue as guest").click()
    await page.wait_for_url(re.compile(r"/checkout/[0-9a-f-]+\?key="))
    booking_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    await expect(page.locator("#booking-summary")).to_contain_text("2 seats")
    await page.get_by_label("Visa — succeeds").check()
    await page.get_by_role("button", name="Pay").click()
    await expect(page.locator("#booking-summary")).to_contain_text("Booking confirmed")
    await expect(page.get_by_role("link", name="Download your tickets (PDF)")).to_be_visible()
    await shot(page, screenshots, "41-guest-confirmed")
    problems.check()
    await page.context.close()

    # the confirmation mail's link, in a fresh browser: the booking and its PDF
    link = await _mailed_link(mail_stack, email, "booking_confirmed", f"/checkout/{booking_id}")
    other = await new_page(browser, storefront, PHONE)
    problems = PageProblems(other)
    await other.goto(link)
    await expect(other.locator("#booking-summary")).to_contain_text("Booking confirmed")
    await shot(other, screenshots, "42-guest-link-phone")
    async with other.expect_download() as download_info:
        await other.get_by_role("link", name="Download your tickets (PDF)").click()
    download = await download_info.value
    pdf = Path(await download.path())
    assert pdf.read_bytes().startswith(b"%PDF")
    # a tampered link, and another booking's key: nothing
    key = link.rsplit("=", 1)[1]
    tampered = link[:-1] + ("A" if key[-1] != "A" else "B")
    async with httpx.AsyncClient(base_url=storefront) as api:
        r = await api.post(
            "/api/v1/bookings/reserve",
            json={
                "event_id": str(event.id),
                "quantity": 1,
                "buyer": {"email": unique_email("web-guest2"), "name": "Someone Else"},
            },
        )
        assert r.status_code == 201, r.text
        foreign = f"/checkout/{booking_id}?key={r.json()['access_key']}"
    for wrong in (tampered, foreign):
        await other.goto(wrong)
        await expect(other.locator("#booking-summary")).to_have_text(
            "We could not find this booking."
        )
    await shot(other, screenshots, "43-guest-link-tampered")
    problems.check()
    await other.context.close()

    # an account with that email: the booking shows in "My bookings" once verified
    async with httpx.AsyncClient(base_url=storefront) as api:
        body = {"email": email, "password": PASSWORD}
        assert (await api.post("/api/v1/auth/register", json=body)).status_code == 202
    verify = await _mailed_link(mail_stack, email, "account_welcome", "/verify-email")
    page = await new_page(browser, storefront)
    problems = PageProblems(page)
    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()
    await page.goto("/bookings")
    await expect(page.locator("#bookings-status")).to_have_text("No bookings yet.")
    await page.goto(verify)
    await page.get_by_role("button", name="Confirm my email address").click()
    await expect(page.get_by_role("heading", name="Email address confirmed")).to_be_visible()
    await page.goto("/bookings")
    await expect(page.locator("#bookings-status")).to_have_text("1 booking")
    await expect(page.locator("#bookings")).to_contain_text(event.name)
    await shot(page, screenshots, "44-guest-booking-claimed")
    problems.check()
    await page.context.close()
