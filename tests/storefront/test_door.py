"""The door scanner page (issue 30) in headless Chromium over a real API process: the fake
camera plays the buyer's QR code (admitted, then refused with time and gate); offline, two
valid tickets are admitted on the phone and a forged one refused; back online both scans
upload and the one another gate admitted meanwhile (through the API) is shown as a conflict.
Someone who does not work this organization's door gets the page's 404; axe-core finds no
serious or critical violation."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect

from evently.infra.resources import Resources
from evently.tickets import signing
from tests.support.camera import qr_y4m
from tests.support.factories import PASSWORD, make_account
from tests.support.organizations import confirmed_booking, make_org, org_event, org_venue
from tests.support.seating import plan_body
from tests.support.servers import ApiURL
from tests.support.storefront import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PHONE,
    PageProblems,
    require_chromium,
)
from tests.support.tickets import new_nonce

pytestmark = pytest.mark.usefixtures("running_workers")

AXE = "/door-static/vendor/axe.min.js"


async def log_in(page: Page, email: str, target: str) -> None:
    await page.goto(target)  # not signed in: the log-in form, then back here
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(f"**{target}")


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    await page.add_script_tag(url=AXE)  # same origin: the page's policy allows it
    found: list[dict[str, Any]] = await page.evaluate(
        """async () => (await axe.run(document)).violations
            .filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => ({id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target)}))"""
    )
    return found


def forged(secret: str) -> str:
    """The same claims signed by a key that is not the platform's."""
    claims = signing.decode_ticket_unverified(secret)
    return signing.sign_ticket(signing.generate_keypair()[0], claims)


async def test_the_door_page_scans_admits_refuses_and_works_offline(
    client: httpx.AsyncClient, resources: Resources, storefront: ApiURL, tmp_path: Path
) -> None:
    admin = await make_account(resources, role="admin")
    org = await make_org(client, resources, admin)
    event = await org_event(client, org, await org_venue(client, org), publish=True)
    buyer = await make_account(resources)
    booking = await confirmed_booking(client, buyer, event["id"], 4)
    r = await client.get(f"/api/v1/bookings/{booking}/tickets", headers=buyer.headers)
    assert r.status_code == 200, r.text
    first, second, third, fourth = r.json()["tickets"]
    url = f"/manage/{org.id}/events/{event['id']}/door"
    camera = qr_y4m(first["secret"], tmp_path / "ticket.y4m")

    require_chromium()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                *CHROMIUM_ARGS,
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={camera}",
            ],
        )
        try:
            context = await browser.new_context(
                base_url=storefront, viewport=PHONE, permissions=["camera"]
            )
            context.set_default_timeout(20_000)
            page = await context.new_page()
            problems = PageProblems(page)

            # someone who does not work this door: the page's 404, like the API's
            await log_in(page, org.members["finance"].user.email, url)
            answer = await page.goto(url)
            assert answer is not None
            assert answer.status == 404
            await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
            await context.clear_cookies()

            await log_in(page, org.members["door"].user.email, url)
            answer = await page.goto(url)
            assert answer is not None
            assert answer.status == 200
            csp = answer.headers["content-security-policy"]
            assert "script-src 'self';" in csp
            assert "http" not in csp
            await expect(page.locator("body[data-ready=yes]")).to_be_attached()
            await page.get_by_label("Gate name").fill("gate-2")
            await page.get_by_label("Gate name").press("Tab")

            # the camera reads the buyer's code: admitted (and the API knows)
            await page.get_by_role("button", name="Start camera").click()
            verdict = page.locator("#answer")
            await expect(verdict).to_have_attribute("data-kind", "admitted")
            await expect(page.locator("#answer-title")).to_have_text("Admitted")
            await page.screenshot(path=str(tmp_path / "admitted.png"))
            await expect(page.locator("#count-admitted")).to_have_text("1")
            # the same code still in front of the camera: refused, with when and where
            await expect(page.locator("#answer-title")).to_have_text("Refused", timeout=20_000)
            await expect(page.locator("#answer-detail")).to_have_text(
                re.compile(r"^Already checked in at \d\d:\d\d on gate-2\.$")
            )
            # the next ask waits REPEAT_MS (2.5 s) after "Scan next": time to stop the camera
            await page.get_by_role("button", name="Scan next").click()
            await page.get_by_role("button", name="Stop camera").click()
            await expect(page.locator("#camera-status")).to_have_text("Camera off.")
            await expect(verdict).to_be_hidden()

            # offline: checked on the phone
            await context.set_offline(True)
            await expect(page.locator("#network")).to_have_attribute("data-state", "offline")
            for ticket in (second, third):
                await page.get_by_role("textbox", name="Ticket code").fill(ticket["secret"])
                await page.get_by_role("button", name="Check ticket").click()
                await expect(page.locator("#answer-title")).to_have_text("Admitted")
                await expect(page.locator("#answer-detail")).to_contain_text("uploads when online")
                await page.get_by_role("button", name="Scan next").click()
            await page.get_by_role("textbox", name="Ticket code").fill(forged(fourth["secret"]))
            await page.get_by_role("textbox", name="Ticket code").press("Enter")
            await expect(page.locator("#answer-title")).to_have_text("Refused")
            await expect(page.locator("#answer-detail")).to_contain_text("signature")
            await page.keyboard.press("Escape")
            # the first ticket again, offline: refused from what the phone keeps
            await page.get_by_role("textbox", name="Ticket code").fill(first["secret"])
            await page.get_by_role("button", name="Check ticket").click()
            await expect(page.locator("#answer-detail")).to_contain_text("on gate-2")
            await page.get_by_role("button", name="Scan next").click()
            await expect(page.locator("#count-queued")).to_have_text("2")
            await expect(page.locator("#count-admitted")).to_have_text("3")

            # meanwhile another gate admits `third` through the API
            r = await client.post(
                "/api/v1/checkin/redeem",
                json={"secret": third["secret"], "nonce": new_nonce(), "device_id": "gate-9"},
                headers=org.owner.headers,
            )
            assert r.status_code == 200, r.text

            # back online: both scans upload; `third` is the conflict, shown
            await context.set_offline(False)
            await expect(page.locator("#count-queued")).to_have_text("0")
            await expect(page.locator("#count-uploaded")).to_have_text("2")
            conflicts = page.locator("#conflicts li")
            await expect(conflicts).to_have_count(1)
            await expect(conflicts.first).to_contain_text(f"seat {third['seat']}")
            await expect(conflicts.first).to_contain_text("on gate-9")
            await page.screenshot(path=str(tmp_path / "conflict.png"), full_page=True)

            # what the server recorded: `second` admitted at its offline scan time on gate-2,
            # `third` by gate-9 and counted as a conflict
            stats = await client.get(
                f"/api/v1/admin/events/{event['id']}/checkins", headers=admin.headers
            )
            assert stats.status_code == 200, stats.text
            s = stats.json()
            assert s["tickets"]["checked_in"] == 3
            assert s["scans"]["offline"] == 2
            assert s["scans"]["conflicts"] == 1
            (conflict,) = s["latest_conflicts"]
            assert conflict["ticket_id"] == third["id"]
            assert conflict["device_id"] == "gate-2"
            assert conflict["checked_in_device"] == "gate-9"

            assert await axe_violations(page) == []
            problems.check()
        finally:
            await browser.close()


async def test_the_door_page_needs_a_session_and_its_own_organization(
    client: httpx.AsyncClient, resources: Resources, storefront: ApiURL
) -> None:
    admin = await make_account(resources, role="admin")
    a = await make_org(client, resources, admin)
    b = await make_org(client, resources, admin)
    event = await org_event(client, a, await org_venue(client, a), publish=True)
    async with httpx.AsyncClient(base_url=storefront) as web:
        url = f"/manage/{a.id}/events/{event['id']}/door"
        r = await web.get(url)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login?next=")
        # static files: this origin, the decoder's licence with it
        for path in ("door.js", "door.css", "vendor/jsQR.js", "vendor/jsQR.LICENSE"):
            assert (await web.get(f"/door-static/{path}")).status_code == 200, path
    # the event under another organization's path: not found, even for that event's door
    async with httpx.AsyncClient(base_url=storefront) as web:
        # the log-in form needs the page's CSRF token: take it from the form
        page = await web.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        r = await web.post(
            "/login",
            data={
                "email": a.members["door"].user.email,
                "password": PASSWORD,
                "csrf_token": token.group(1),
                "next": "/",
            },
        )
        assert r.status_code == 303, r.text
        assert (await web.get(f"/manage/{a.id}/events/{event['id']}/door")).status_code == 200
        assert (await web.get(f"/manage/{b.id}/events/{event['id']}/door")).status_code == 404
        assert (await web.get(f"/manage/{a.id}/events/{uuid.uuid4()}/door")).status_code == 404


async def test_the_door_page_sends_a_seated_guest_to_their_seat(
    client: httpx.AsyncClient, resources: Resources, storefront: ApiURL
) -> None:
    """Issue 34: a reserved seat's ticket is admitted with "Section A, row 1, seat 2"."""
    admin = await make_account(resources, role="admin")
    org = await make_org(client, resources, admin)
    venue = await org_venue(client, org)
    plan = await client.post(
        org.url(f"/venues/{venue['id']}/seating-plans"),
        json=plan_body(1, 1, 4),
        headers=org.owner.headers,
    )
    assert plan.status_code == 201, plan.text
    event = await org_event(client, org, venue, publish=True, seating_plan_id=plan.json()["id"])
    buyer = await make_account(resources)
    booking = await confirmed_booking(client, buyer, event["id"], seats=["A-1-2"])
    r = await client.get(f"/api/v1/bookings/{booking}/tickets", headers=buyer.headers)
    (ticket,) = r.json()["tickets"]
    url = f"/manage/{org.id}/events/{event['id']}/door"

    require_chromium()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context(base_url=storefront, viewport=PHONE)
            context.set_default_timeout(20_000)
            page = await context.new_page()
            problems = PageProblems(page)
            await log_in(page, org.members["door"].user.email, url)
            await expect(page.locator("body[data-ready=yes]")).to_be_attached()
            await page.get_by_role("textbox", name="Ticket code").fill(ticket["secret"])
            await page.get_by_role("button", name="Check ticket").click()
            await expect(page.locator("#answer-title")).to_have_text("Admitted")
            await expect(page.locator("#answer-detail")).to_contain_text("Section A, row 1, seat 2")
            problems.check()
        finally:
            await browser.close()
