"""Attendees, questions and transfers in a real browser (issue 32; Debian's Chromium, the API as
a real server process, the real workers):

- a guest books two seats of an event that asks questions; paying with required answers
  missing is refused on the page, the errors next to the fields (the API's 422 rules), the
  first one focused; answered by keyboard, the booking is paid and the answers are stored;
- on the booking page, "Transfer this ticket" gives a ticket to someone else (its code stops
  working, a new ticket is listed);
- the back office's order page shows the attendees' names and answers;
- a guest in a queued on-sale waits in the waiting room like everyone, then checks out;
- axe-core on each page: no serious or critical violation.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import text

from evently.infra.resources import Resources
from tests.support.axe import serious_violations
from tests.support.factories import PASSWORD, make_account, make_event, unique_email
from tests.support.organizations import make_org, org_event, org_venue
from tests.support.servers import ApiURL
from tests.support.storefront import PageProblems, new_page

pytestmark = pytest.mark.usefixtures("running_workers")


async def _shot(page: Page, screenshots: Path, name: str) -> None:
    await page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


async def _axe(page: Page) -> None:
    found = await serious_violations(page)
    assert found == [], (page.url, found)


async def test_a_guest_answers_the_questions_pays_and_transfers_a_ticket(
    browser: Browser,
    storefront: ApiURL,
    client: httpx.AsyncClient,
    resources: Resources,
    screenshots: Path,
) -> None:
    admin = await make_account(resources, "admin")
    org = await make_org(client, resources, admin, roles=("owner",))
    venue = await org_venue(client, org)
    event = await org_event(client, org, venue, publish=True, capacity=10)
    base = org.url(f"/events/{event['id']}/questions")
    asked = {}
    for spec in (
        {"label": "Company", "kind": "text", "required": True, "per": "ticket"},
        {"label": "T-shirt size", "kind": "choice", "options": ["S", "M", "L"], "per": "ticket"},
        {"label": "Invoice needed", "kind": "checkbox", "required": True, "per": "booking"},
    ):
        r = await client.post(base, json=spec, headers=org.owner.headers)
        assert r.status_code == 201, r.text
        asked[spec["label"]] = r.json()["id"]

    page = await new_page(browser, storefront)
    problems = PageProblems(page)
    await page.goto(f"/events/{event['id']}")
    await page.get_by_label("Your name").fill("Erin Employer")
    await page.get_by_label("Your email").fill(unique_email("employer"))
    await page.get_by_label("Number of seats").fill("2")
    await page.get_by_role("button", name="Continue as guest").click()
    await page.wait_for_url(re.compile(r"/checkout/[0-9a-f-]+\?key="))
    booking_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    key = urlsplit(page.url).query.split("=", 1)[1]
    form = page.locator("#attendees-form")
    await expect(form).to_be_visible()
    await expect(form.locator("fieldset[data-seat]")).to_have_count(3)  # 2 seats, the booking
    await _axe(page)

    # paying with required answers missing: refused on the page, nothing charged
    await page.get_by_label("Visa — succeeds").check()
    await page.get_by_role("button", name="Pay").click()
    await expect(page.locator("#attendees-message")).to_contain_text("not answered yet")
    company_1 = page.locator(f"#attendee-1-q-{asked['Company']}")
    await expect(company_1).to_be_focused()
    await expect(company_1).to_have_attribute("aria-invalid", "true")
    await expect(page.locator(f"#attendee-1-q-{asked['Company']}-error")).to_have_text(
        "Please answer this question."
    )
    await expect(page.locator(f"#booking-q-{asked['Invoice needed']}-error")).to_be_visible()
    await expect(page.locator("#booking-summary")).not_to_contain_text("confirmed")
    await _axe(page)
    await _shot(page, screenshots, "50-attendees-missing")

    # answered from the keyboard: the focused field first, then Tab through the form
    await page.keyboard.type("ACME")
    await page.locator("#attendee-1-name").focus()
    await page.keyboard.type("Ada Lovelace")
    await page.keyboard.press("Tab")  # email (optional)
    await page.keyboard.press("Tab")  # Company
    await expect(company_1).to_be_focused()
    await page.keyboard.press("Tab")  # T-shirt size
    await page.keyboard.press("Tab")  # ticket 2's name
    await expect(page.locator("#attendee-2-name")).to_be_focused()
    await page.keyboard.type("Bob Builder")
    await page.get_by_label("Company (required)").nth(1).fill("Initech")
    await page.locator(f"#booking-q-{asked['Invoice needed']}").focus()
    await page.keyboard.press("Space")
    await page.get_by_role("button", name="Pay").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#booking-summary")).to_contain_text("Booking confirmed")
    async with httpx.AsyncClient(base_url=storefront) as api:
        got = await api.get(f"/api/v1/bookings/{booking_id}/attendees", params={"key": key})
    assert got.status_code == 200, got.text
    assert [a["name"] for a in got.json()["attendees"]] == ["Ada Lovelace", "Bob Builder"]
    assert [a["answers"] for a in got.json()["attendees"]] == [
        {asked["Company"]: "ACME"},
        {asked["Company"]: "Initech"},
    ]
    assert got.json()["answers"] == {asked["Invoice needed"]: True}

    # the booking page: transfer the first ticket
    rows = page.locator("#ticket-rows li")
    await expect(rows).to_have_count(2)
    first_id = await rows.first.get_attribute("data-ticket-id")
    toggle = rows.first.get_by_role("button", name="Transfer this ticket")
    await toggle.focus()
    await page.keyboard.press("Enter")
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    name = rows.first.get_by_label("New attendee's name")
    await expect(name).to_be_focused()
    await rows.first.get_by_role("button", name="Transfer", exact=True).click()
    await expect(rows.first.locator(".field-error")).to_have_text(
        "Enter the new attendee's name and email address."
    )
    await _axe(page)
    await name.fill("Carol Newman")
    await rows.first.get_by_label("New attendee's email").fill(unique_email("carol"))
    await rows.first.get_by_role("button", name="Transfer", exact=True).click()
    await expect(page.locator("#transfer-message")).to_contain_text("Transferred to Carol Newman")
    # the old ticket is revoked (no longer listed), its replacement listed
    await expect(page.locator(f'#ticket-rows li[data-ticket-id="{first_id}"]')).to_have_count(0)
    await expect(rows).to_have_count(2)
    await expect(page.locator("#transfer-message")).to_be_focused()
    await _axe(page)
    await _shot(page, screenshots, "51-ticket-transferred")
    problems.check()
    await page.context.close()

    # the back office's order page: the attendees, their answers, the tickets' names
    owner = await new_page(browser, storefront)
    problems = PageProblems(owner)
    await owner.goto("/login?next=/manage")
    await owner.get_by_label("Email").fill(org.owner.user.email)
    await owner.get_by_label("Password").fill(PASSWORD)
    await owner.get_by_role("button", name="Log in").click()
    await owner.wait_for_url(re.compile(r"/manage/[0-9a-f-]{36}$"))
    await owner.goto(f"/manage/{org.id}/orders/{booking_id}")
    table = owner.locator("#attendees")
    await expect(table).to_contain_text("Ada Lovelace")
    await expect(table).to_contain_text("Company: ACME")
    await expect(table).to_contain_text("Bob Builder")
    await expect(table).to_contain_text("Company: Initech")
    await expect(owner.locator("#booking-answers")).to_contain_text("Invoice needed")
    await expect(owner.locator("td.attendee", has_text="Carol Newman")).to_have_count(1)
    await _axe(owner)
    await _shot(owner, screenshots, "52-order-attendees")
    problems.check()
    await owner.context.close()


async def test_a_guest_waits_in_a_queued_on_sale_then_checks_out(
    browser: Browser,
    storefront: ApiURL,
    client: httpx.AsyncClient,
    resources: Resources,
    screenshots: Path,
) -> None:
    admin = await make_account(resources, "admin")
    event = await make_event(resources, capacity=5, name=f"Queued {uuid.uuid4().hex[:6]}")
    r = await client.patch(
        f"/api/v1/admin/events/{event.id}", json={"queue": "on"}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    page = await new_page(browser, storefront)
    problems = PageProblems(page)
    await page.goto(f"/events/{event.id}")
    await page.get_by_label("Your name").fill("Quinn Queue")
    await page.get_by_label("Your email").fill(unique_email("web-queue"))
    await page.get_by_label("Number of seats").fill("1")
    await page.get_by_role("button", name="Continue as guest").click()
    # the waiting room's turn comes (the admission workflow admits in join order)
    await page.wait_for_url(re.compile(r"/checkout/[0-9a-f-]+\?key="), timeout=30_000)
    await expect(page.locator("#booking-summary")).to_contain_text("1 seat")
    async with resources.engine.connect() as conn:
        places = await conn.scalar(
            text("SELECT count(*) FROM queue_entries WHERE event_id = :e"), {"e": event.id}
        )
    assert places == 1  # the guest's place in the line
    await _shot(page, screenshots, "53-guest-after-the-queue")
    problems.check()
    await page.context.close()
