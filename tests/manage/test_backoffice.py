"""The organizer's back office in a real browser (Debian's headless Chromium) over a real API
process and the real workers (issue 30):

- an owner, only through the pages, adds a venue, creates an event with two ticket types and a
  promo code, publishes it and clones it to another date; a buyer buys (API); the dashboard's
  sold count moves without a reload; the owner finds the order by the buyer's email and
  refunds it;
- the role matrix: door sees only the scanner links, finance reads orders but cannot edit
  events, a manager cannot change members — each refused action also refused when POSTed
  directly with the page's CSRF token, to the page's route and to the JSON API;
- axe-core on every page visited: no serious or critical violation; forms used by keyboard.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from evently.infra.resources import Resources
from tests.api.organizations.helpers import Org, confirmed_booking, make_org
from tests.factories import PASSWORD, Account, make_account, make_accounts
from tests.servers import ApiURL
from tests.storefront.conftest import PageProblems, new_page
from tests.support.axe import serious_violations

pytestmark = pytest.mark.usefixtures("running_workers")


async def _shot(page: Page, screenshots: Path, name: str) -> None:
    await page.screenshot(path=str(screenshots / f"manage-{name}.png"), full_page=True)


class Visitor:
    """A browser session of one account, checking every page it sees with axe-core."""

    def __init__(self, page: Page, screenshots: Path) -> None:
        self.page = page
        self.screenshots = screenshots
        self.problems = PageProblems(page)
        self.audited: list[str] = []

    async def audit(self, name: str) -> None:
        found = await serious_violations(self.page)
        assert found == [], (self.page.url, found)
        self.audited.append(self.page.url)
        await _shot(self.page, self.screenshots, name)
        self.problems.check()

    async def csrf(self) -> str:
        token = await self.page.locator('meta[name="csrf-token"]').get_attribute("content")
        assert token
        return token

    async def post_form(self, path: str) -> int:
        """A direct POST, as a script on the page could send it (the session's cookies and
        the page's CSRF token)."""
        r = await self.page.request.post(path, form={"csrf_token": await self.csrf()})
        return r.status

    async def post_api(self, path: str, body: dict[str, Any] | None = None) -> int:
        r = await self.page.request.post(
            path, data=body or {}, headers={"X-CSRF-Token": await self.csrf()}
        )
        return r.status


async def log_in(browser: Browser, url: str, account: Account, screenshots: Path) -> Visitor:
    page = await new_page(browser, url)
    await page.goto("/login?next=/manage")
    await page.get_by_label("Email").fill(account.user.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(re.compile(r"/manage/[0-9a-f-]{36}$"))
    return Visitor(page, screenshots)


def _local(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture(scope="module")
async def org(app_client: httpx.AsyncClient, resources: Resources) -> Org:
    admin = await make_account(resources, "admin")
    return await make_org(app_client, resources, admin)


async def test_an_organizer_runs_an_event_through_the_pages(
    browser: Browser,
    storefront: ApiURL,
    resources: Resources,
    org: Org,
    screenshots: Path,
) -> None:
    me = await log_in(browser, storefront, org.owner, screenshots)
    page = me.page
    await expect(page.locator("#my-role")).to_have_text("owner")
    await me.audit("01-events")

    # a venue, then the event (forms: filled and sent with the keyboard)
    await page.get_by_role("link", name="New event").click()
    await me.audit("02-new-event")
    await page.locator("#v-name").fill("Main hall")
    await page.locator("#v-address").fill("Storgata 1")
    await page.locator("#v-city").fill("Oslo")
    await page.locator("#v-capacity").fill("300")
    await page.locator("#v-capacity").press("Enter")  # submit by keyboard
    await expect(page.locator("#ev-venue")).to_contain_text("Main hall")
    name = f"Spring gala {uuid.uuid4().hex[:6]}"
    await page.locator("#ev-name").fill(name)
    await page.locator("#ev-capacity").fill("100")
    await page.locator("#ev-price").fill("40.00")
    await page.locator("#create-event").focus()
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r"/events/[0-9a-f-]{36}$"))
    event_url = page.url
    event_id = event_url.rsplit("/", 1)[1]
    await expect(page.locator("#event-status")).to_have_text("draft")
    await me.audit("03-event-draft")

    # two ticket types and a promo code for one of them
    for type_name, price, cap in (("VIP", "120.00", "10"), ("Student", "20.00", "")):
        await page.locator("#tt-name").fill(type_name)
        await page.locator("#tt-price").fill(price)
        await page.locator("#tt-capacity").fill(cap)
        await page.locator("#add-type").click()
        await expect(page.locator("#type-counts")).to_contain_text(type_name)
    await page.locator("#pc-code").fill("spring10")
    await page.locator("#pc-percent").fill("10")
    await page.locator("#pc-max").fill("5")
    await page.get_by_label("Student").check()
    await page.locator("#pc-max").press("Enter")
    await expect(page.locator("#code-counts")).to_contain_text("SPRING10")
    await expect(page.locator("#code-counts")).to_contain_text("0 / 5")

    # publish; clone to a date a month later
    await page.get_by_role("button", name="Publish").click()
    await expect(page.locator("#event-status")).to_have_text("published")
    await me.audit("04-event-published")
    later = datetime.now(UTC) + timedelta(days=60)
    await page.locator("#cl-starts").fill(_local(later))
    await page.locator("#cl-ends").fill(_local(later + timedelta(hours=3)))
    await page.get_by_role("button", name="Clone").click()
    await page.wait_for_url(re.compile(r"/events/[0-9a-f-]{36}$"))
    assert page.url != event_url
    await expect(page.locator("#event-status")).to_have_text("draft")
    await expect(page.locator("#type-counts")).to_contain_text("VIP")
    await expect(page.locator("#type-counts")).to_contain_text("Student")
    await expect(page.locator("#code-counts")).to_contain_text("SPRING10")
    await me.audit("05-event-cloned")
    await page.goto(f"/manage/{org.id}")
    await expect(page.get_by_role("link", name=name)).to_have_count(2)  # draft + on sale

    # the dashboard, live: a sale shows up without a reload
    await page.goto(f"{event_url}/dashboard")
    await expect(page.locator("#fig-sold")).to_have_text("0")
    await me.audit("06-dashboard-empty")
    (buyer,) = await make_accounts(resources, 1)
    async with httpx.AsyncClient(base_url=storefront, timeout=30) as api:
        booking_id = await confirmed_booking(api, buyer, event_id, quantity=2)
    sold_at = time.monotonic()
    await expect(page.locator("#fig-sold")).to_have_text("2", timeout=2_000)
    moved_after = time.monotonic() - sold_at
    print(f"dashboard moved {moved_after:.2f} s after the sale was confirmed")
    await expect(page.locator("#fig-revenue")).to_contain_text("80.00")
    await me.audit("07-dashboard-sold")

    # the order, found by the buyer's email; refunded
    await page.get_by_role("link", name="Orders").click()
    await page.get_by_label("Buyer name, email, booking id or ticket code").fill(
        buyer.user.email.upper()
    )
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("#orders tbody tr")).to_have_count(1)
    await me.audit("08-orders")
    await page.locator(".order-link").click()
    await expect(page.locator("h1")).to_contain_text(booking_id)
    await expect(page.locator("#order-status")).to_have_text("confirmed")
    await expect(page.get_by_role("table", name="Tickets").locator("tbody tr")).to_have_count(2)
    await me.audit("09-order")
    await page.get_by_role("button", name="Refund the whole order").click()
    await expect(page.locator("#order-status")).to_have_text("cancelled")
    await expect(page.get_by_role("table", name="Payments")).to_contain_text("refund")
    await me.audit("10-order-refunded")

    # the attendees, the members
    await page.goto(f"{event_url}/attendees")
    await me.audit("11-attendees")
    r = await page.request.get(await page.locator("#bookings-csv").get_attribute("href") or "")
    assert r.status == 200
    assert booking_id in await r.text()
    await page.get_by_role("link", name="Members").click()
    await me.audit("12-members")

    # members: the owner adds one, changes the role, removes them (the API's service)
    (newcomer,) = await make_accounts(resources, 1)
    await page.get_by_label("Email of an existing account").fill(newcomer.user.email)
    await page.get_by_label("Role", exact=True).select_option("finance")
    await page.get_by_role("button", name="Add the member").click()
    row = page.locator(f'tr[data-member="{newcomer.user.email}"]')
    await expect(row.locator(".role")).to_have_text("finance")
    await row.get_by_label(f"Role of {newcomer.user.email}").select_option("door")
    await row.get_by_role("button", name="Set role").click()
    await expect(row.locator(".role")).to_have_text("door")
    await me.audit("13-members-changed")
    await row.get_by_role("button", name="Remove").click()
    await expect(row).to_have_count(0)

    # the audit log tells all of it; the webhooks page (none yet)
    await page.get_by_role("link", name="Audit log").click()
    for action in ("event.cloned", "booking.refunded", "member.removed", "promo_code.create"):
        await expect(page.locator("#audit")).to_contain_text(action)
    await me.audit("14-audit")
    await page.get_by_role("link", name="Webhooks").click()
    await me.audit("15-webhooks")


async def test_roles_see_and_may_do_only_their_part(
    browser: Browser,
    storefront: ApiURL,
    client: httpx.AsyncClient,
    resources: Resources,
    org: Org,
    screenshots: Path,
) -> None:
    r = await client.post(
        org.url("/venues"),
        json={"name": "Annex", "address": "Gate 2", "city": "Oslo", "capacity": 50},
        headers=org.owner.headers,
    )
    venue_id = r.json()["id"]
    starts = datetime.now(UTC) + timedelta(days=10)
    r = await client.post(
        org.url("/events"),
        json={
            "name": "Role check",
            "venue_id": venue_id,
            "event_type": "talk",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(),
            "capacity": 10,
            "price": "10.00",
            "currency": "EUR",
        },
        headers=org.owner.headers,
    )
    event_id = r.json()["id"]
    event_page = f"/manage/{org.id}/events/{event_id}"
    api_event = f"/api/v1/organizations/{org.id}/events/{event_id}"
    async with httpx.AsyncClient(base_url=storefront, timeout=30) as api:
        await api.post(f"{api_event}/publish", headers=org.owner.headers)
        (buyer,) = await make_accounts(resources, 1)
        booking_id = await confirmed_booking(api, buyer, event_id)

    # door: only the scanner links; no event page, no orders, no refund
    door = await log_in(browser, storefront, org.members["door"], screenshots)
    await expect(door.page.locator("#my-role")).to_have_text("door")
    await expect(door.page.locator(".door-link").first).to_be_visible()
    assert await door.page.locator(f'a[href="{event_page}"]').count() == 0
    assert await door.page.get_by_role("link", name="Orders").count() == 0
    assert await door.page.get_by_role("link", name="New event").count() == 0
    await door.audit("20-door-events")
    assert (await door.page.goto(event_page)).status == 403  # type: ignore[union-attr]
    await door.audit("21-door-refused")
    assert await door.post_form(f"{event_page}/publish") == 403
    assert await door.post_api(f"{api_event}/publish") == 403
    assert await door.post_form(f"/manage/{org.id}/orders/{booking_id}/refund") == 403
    assert await door.post_api(f"{api_event}/bookings/{booking_id}/refund") == 403

    # finance: orders and refunds, no event editing
    finance = await log_in(browser, storefront, org.members["finance"], screenshots)
    await finance.page.goto(event_page)
    assert await finance.page.locator("#publish, #edit-form, #type-form, #clone-form").count() == 0
    await finance.audit("22-finance-event")
    assert await finance.post_form(f"{event_page}/clone") == 403
    assert await finance.post_api(f"{api_event}/clone", {"starts_at": starts.isoformat()}) == 403
    assert await finance.post_form(f"{event_page}/cancel") == 403
    await finance.page.goto(f"/manage/{org.id}/orders/{booking_id}")
    await expect(finance.page.get_by_role("button", name="Refund the whole order")).to_be_visible()
    await finance.audit("23-finance-order")

    # manager: edits events, but neither refunds nor changes members
    manager = await log_in(browser, storefront, org.members["manager"], screenshots)
    await manager.page.goto(f"/manage/{org.id}/orders/{booking_id}")
    assert await manager.page.get_by_role("button", name="Refund the whole order").count() == 0
    assert await manager.post_form(f"/manage/{org.id}/orders/{booking_id}/refund") == 403
    assert await manager.post_api(f"{api_event}/bookings/{booking_id}/refund") == 403
    await manager.page.goto(f"/manage/{org.id}/members")
    await manager.audit("24-manager-members")
    assert await manager.page.locator("form[action*='members']").count() == 0
    assert await manager.post_form(f"/manage/{org.id}/members") == 403
    assert (await manager.page.goto(f"/manage/{org.id}/audit")).status == 403  # type: ignore[union-attr]
    assert (
        await manager.post_api(
            f"/api/v1/organizations/{org.id}/members",
            {"email": buyer.user.email, "role": "door"},
        )
        == 403
    )

    # an outsider: the organization does not exist for them; no CSRF token: refused
    (outsider_account,) = await make_accounts(resources, 1)
    outsider = await log_in_anywhere(browser, storefront, outsider_account)
    assert (await outsider.goto(event_page)).status == 404  # type: ignore[union-attr]
    r2 = await manager.page.request.post(f"{event_page}/publish", form={})
    assert r2.status == 403


async def log_in_anywhere(browser: Browser, url: str, account: Account) -> Page:
    page = await new_page(browser, url)
    await page.goto("/login?next=/")
    await page.get_by_label("Email").fill(account.user.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(re.compile(r"/$"))
    return page
