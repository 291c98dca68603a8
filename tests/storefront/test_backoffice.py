"""The organizer's back office in a real browser (Debian's headless Chromium) over a real API
process and the real workers (issue 30):

- an owner, only through the pages, adds a venue, creates an event with two ticket types and a
  promo code, publishes it and clones it to another date; a buyer buys in the storefront (log
  in, choose the type, hold, pay); the dashboard's sold count moves within 2 s without a
  reload; the owner finds the order by the buyer's email, refunds one line, resends the
  tickets, refunds the rest; redelivers a webhook delivery;
- the role matrix: door sees only the scanner links, finance reads orders and refunds but
  cannot edit events, a manager cannot refund or change members — each refused action also
  refused when POSTed directly with the page's CSRF token, to the page's route and to the JSON
  API;
- axe-core on every page visited (the buyer's storefront pages too): no serious or critical
  violation; forms used by keyboard.
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
from tests.support.axe import serious_violations
from tests.support.factories import PASSWORD, Account, make_account, make_accounts
from tests.support.organizations import (
    Org,
    confirmed_booking,
    make_org,
    org_event,
    org_venue,
)
from tests.support.seating import plan_body
from tests.support.servers import ApiURL
from tests.support.storefront import PageProblems, new_page
from tests.support.webhook_receiver import Receiver

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


MANAGE_HOME = re.compile(r"/manage/[0-9a-f-]{36}$")


async def log_in(
    browser: Browser,
    url: str,
    account: Account,
    screenshots: Path,
    next_path: str = "/manage",
    lands: str | re.Pattern[str] = MANAGE_HOME,
) -> Visitor:
    """Log in through the form, then on to ``next_path`` (by default the back office: its
    only organization)."""
    page = await new_page(browser, url)
    await page.goto(f"/login?next={next_path}")
    await page.get_by_label("Email").fill(account.user.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(lands)
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
    client: httpx.AsyncClient,
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

    # a webhook for the sales (the JSON API: its secret is shown once) to a real receiver on
    # loopback (allowed by the test settings of the in-process app, not the API process's)
    receiver = await Receiver().start()
    r = await client.post(
        org.url("/webhooks"),
        json={"url": receiver.url, "event_types": ["booking.confirmed"]},
        headers=org.owner.headers,
    )
    assert r.status_code == 201, r.text
    receiver.secret = r.json()["secret"]

    # the dashboard, live: a sale in the storefront shows up without a reload
    await page.goto(f"{event_url}/dashboard")
    await expect(page.locator("#fig-sold")).to_have_text("0")
    await me.audit("06-dashboard-empty")
    (buyer,) = await make_accounts(resources, 1)
    booking_id = await buy_in_the_storefront(
        browser, storefront, buyer, event_id, "VIP", 2, screenshots
    )
    sold_at = time.monotonic()
    # a bounded poll (issue 35): the live push usually lands in well under a second, but a
    # busy 2-core machine must not fail it; the time it took is printed below
    await expect(page.locator("#fig-sold")).to_have_text("2", timeout=30_000)
    moved_after = time.monotonic() - sold_at
    print(f"dashboard moved {moved_after:.2f} s after the sale was confirmed")
    await expect(page.locator("#fig-revenue")).to_contain_text("240.00")
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

    # one line refunded (one seat of VIP), by keyboard; the booking stays, one ticket left
    vip = page.locator('#lines tr[data-line="VIP"]')
    await vip.get_by_label("Seats of VIP to refund").fill("1")
    await vip.get_by_label("Seats of VIP to refund").press("Enter")
    await expect(vip.locator(".cancelled")).to_have_text("1")
    await expect(page.locator("#order-status")).to_have_text("confirmed")
    await expect(page.get_by_role("table", name="Payments")).to_contain_text("refund")
    tickets = page.get_by_role("table", name="Tickets")
    await expect(tickets.locator("tbody tr", has_text="revoked")).to_have_count(1)
    await me.audit("10-order-line-refunded")

    # the tickets mailed again: a second confirmation in the outbox; a double submit of the
    # same form (its idempotency key) queues one
    resend = page.locator("#resend-form")
    await resend.evaluate("f => { f.requestSubmit(); f.requestSubmit(); }")
    emails = page.get_by_role("table", name="Emails")
    await expect(emails.locator("tbody tr", has_text="booking_confirmed")).to_have_count(2)
    await page.reload()
    await expect(emails.locator("tbody tr", has_text="booking_confirmed")).to_have_count(2)
    await me.audit("11-order-resent")

    # and the rest of it
    await page.get_by_role("button", name="Refund the whole order").click()
    await expect(page.locator("#order-status")).to_have_text("cancelled")
    await me.audit("12-order-refunded")

    # the attendees, the members
    await page.goto(f"{event_url}/attendees")
    await me.audit("13-attendees")
    r = await page.request.get(await page.locator("#bookings-csv").get_attribute("href") or "")
    assert r.status == 200
    assert booking_id in await r.text()
    await page.get_by_role("link", name="Members").click()
    await me.audit("14-members")

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
    await me.audit("15-members-changed")
    await row.get_by_role("button", name="Remove").click()
    await expect(row).to_have_count(0)

    # the webhooks page: the sale's delivery, delivered; sent again by its button (the same
    # message: the receiver sees it twice)
    await page.get_by_role("link", name="Webhooks").click()
    first = page.locator("tr[data-delivery]")
    await expect(first).to_have_count(1)
    await expect(first.locator(".status")).to_have_text("delivered")
    await me.audit("16-webhooks")
    await first.get_by_role("button", name=re.compile("^Redeliver")).click()
    rows = page.locator("tr[data-delivery]")
    await expect(rows).to_have_count(2)
    await expect(rows.filter(has_text="(redelivery)")).to_have_count(1)

    async def redelivered() -> bool:
        await page.reload()
        return await rows.filter(has_text="(redelivery)").locator(".status").inner_text() == (
            "delivered"
        )

    deadline = time.monotonic() + 30
    while not await redelivered():
        assert time.monotonic() < deadline, "the redelivery was not delivered"
    assert sum(receiver.duplicates.values()) == 1
    await me.audit("17-webhooks-redelivered")
    await receiver.stop()

    # the audit log tells all of it
    await page.get_by_role("link", name="Audit log").click()
    for action in (
        "event.cloned",
        "booking.lines_refunded",
        "booking.tickets_resent",
        "booking.refunded",
        "webhook.redelivered",
        "member.removed",
        "promo_code.create",
    ):
        await expect(page.locator("#audit")).to_contain_text(action)
    await me.audit("18-audit")


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
    api_hooks = f"/api/v1/organizations/{org.id}/webhooks"
    nobody = uuid.uuid4()  # refused by role before anything is looked up
    async with httpx.AsyncClient(base_url=storefront, timeout=30) as api:
        await api.post(f"{api_event}/publish", headers=org.owner.headers)
        (buyer,) = await make_accounts(resources, 1)
        booking_id = await confirmed_booking(api, buyer, event_id)
        r = await api.get(f"{api_event}/ticket-types", headers=org.owner.headers)
        default_type = r.json()["items"][0]["id"]
    lines = {"lines": [{"ticket_type_id": default_type, "quantity": 1}]}

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
    for page_path in ("orders", f"orders/{booking_id}", "members", "webhooks", "audit"):
        answer = await door.page.goto(f"/manage/{org.id}/{page_path}")
        assert answer is not None
        assert answer.status == 403, page_path
    assert await door.post_form(f"/manage/{org.id}/orders/{booking_id}/resend") == 403
    assert await door.post_api(f"{api_event}/bookings/{booking_id}/resend-tickets") == 403
    assert await door.post_form(f"/manage/{org.id}/orders/{booking_id}/refund-line") == 403
    assert await door.post_api(f"{api_event}/bookings/{booking_id}/cancel-lines", lines) == 403
    await door.page.goto(f"/manage/{org.id}")

    # finance: orders and refunds, no event editing
    finance = await log_in(browser, storefront, org.members["finance"], screenshots)
    await finance.page.goto(event_page)
    assert await finance.page.locator("#publish, #edit-form, #type-form, #clone-form").count() == 0
    await finance.audit("22-finance-event")
    assert await finance.post_form(f"{event_page}/clone") == 403
    assert await finance.post_api(f"{api_event}/clone", {"starts_at": starts.isoformat()}) == 403
    assert await finance.post_form(f"{event_page}/cancel") == 403
    assert await finance.post_form(f"{event_page}/ticket-types") == 403
    assert await finance.post_api(f"{api_event}/ticket-types", {"name": "X", "price": "1"}) == 403
    await finance.page.goto(f"/manage/{org.id}/orders/{booking_id}")
    await expect(finance.page.get_by_role("button", name="Refund the whole order")).to_be_visible()
    await expect(finance.page.locator("form.line-refund")).to_have_count(1)
    await expect(finance.page.locator("#resend")).to_be_visible()
    await finance.audit("23-finance-order")
    assert (
        await finance.post_form(f"/manage/{org.id}/webhooks/{nobody}/deliveries/{nobody}/redeliver")
        == 403
    )
    assert await finance.post_api(f"{api_hooks}/{nobody}/deliveries/{nobody}/redeliver") == 403

    # manager: edits events, but neither refunds nor changes members
    manager = await log_in(browser, storefront, org.members["manager"], screenshots)
    await manager.page.goto(f"/manage/{org.id}/orders/{booking_id}")
    assert await manager.page.get_by_role("button", name="Refund the whole order").count() == 0
    assert await manager.post_form(f"/manage/{org.id}/orders/{booking_id}/refund") == 403
    assert await manager.post_api(f"{api_event}/bookings/{booking_id}/refund") == 403
    assert await manager.page.locator("form.line-refund").count() == 0
    assert await manager.post_form(f"/manage/{org.id}/orders/{booking_id}/refund-line") == 403
    assert await manager.post_api(f"{api_event}/bookings/{booking_id}/cancel-lines", lines) == 403
    await expect(manager.page.locator("#resend")).to_be_visible()  # managers may resend
    await manager.audit("25-manager-order")
    assert await manager.post_form(f"/manage/{org.id}/members/{buyer.id}/role") == 403
    assert await manager.post_form(f"/manage/{org.id}/members/{buyer.id}/remove") == 403
    assert (
        await manager.post_form(f"/manage/{org.id}/webhooks/{nobody}/deliveries/{nobody}/redeliver")
        == 403
    )
    assert await manager.post_api(f"{api_hooks}/{nobody}/deliveries/{nobody}/redeliver") == 403
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
    outsider = await log_in(
        browser, storefront, outsider_account, screenshots, "/", re.compile(r"/$")
    )
    assert (await outsider.page.goto(event_page)).status == 404  # type: ignore[union-attr]
    r2 = await manager.page.request.post(f"{event_page}/publish", form={})
    assert r2.status == 403


async def buy_in_the_storefront(
    browser: Browser,
    url: str,
    buyer: Account,
    event_id: str,
    type_name: str,
    seats: int,
    screenshots: Path,
) -> str:
    """The buyer, in a browser of their own: log in, the event page, the ticket type and the
    seats, hold, pay with a card that succeeds; returns the booking's id once the page says it
    is confirmed. Every storefront page on the way is checked with axe-core."""
    shop = await log_in(
        browser, url, buyer, screenshots, f"/events/{event_id}", f"**/events/{event_id}"
    )
    page = shop.page
    select = page.get_by_label("Ticket type")
    option = select.locator("option", has_text=type_name)
    await expect(option).to_have_count(1)
    await select.select_option(value=await option.get_attribute("value"))
    await page.get_by_label("Number of seats").fill(str(seats))
    await shop.audit("buyer-2-event")
    await page.get_by_role("button", name="Hold seats").click()
    await page.wait_for_url(re.compile(r"/checkout/"))
    booking_id = page.url.rsplit("/", 1)[1]
    await page.get_by_label("Visa — succeeds").check()
    await shop.audit("buyer-3-checkout")
    await page.get_by_role("button", name="Pay").click()
    await expect(page.locator("#booking-summary")).to_contain_text("Booking confirmed")
    await shop.audit("buyer-4-confirmed")
    return booking_id


async def test_every_other_storefront_and_back_office_page_passes_axe(
    browser: Browser,
    storefront: ApiURL,
    client: httpx.AsyncClient,
    resources: Resources,
    org: Org,
    screenshots: Path,
) -> None:
    """The pages the two walks above do not reach, each checked with axe-core: the
    storefront's home, sign-up, password and email pages (anonymous), the buyer's bookings and
    a waitlist entry, and the back office's organization chooser (an account in two)."""
    event = await org_event(client, org, await org_venue(client, org), publish=True, capacity=1)
    first, buyer = await make_accounts(resources, 2)
    await confirmed_booking(client, first, event["id"])  # sold out
    r = await client.post(
        "/api/v1/waitlist/join",
        json={"event_id": event["id"], "quantity": 1},
        headers=buyer.headers,
    )
    assert r.status_code == 201, r.text
    entry_id = r.json()["entry_id"]

    anonymous = Visitor(await new_page(browser, storefront), screenshots)
    for name, path in (
        ("home", "/"),
        ("login", "/login"),
        ("signup", "/signup"),
        ("forgot-password", "/forgot-password"),
        ("reset-password", "/reset-password?token=not-a-token"),
        ("verify-email", "/verify-email?token=not-a-token"),
        ("event-sold-out", f"/events/{event['id']}"),
    ):
        await anonymous.page.goto(path)
        await anonymous.page.wait_for_load_state("networkidle")
        await anonymous.audit(f"30-storefront-{name}")

    shopper = await log_in(browser, storefront, buyer, screenshots, "/", re.compile(r"/$"))
    page = shopper.page
    for name, path in (("bookings", "/bookings"), ("waitlist", f"/waitlist/{entry_id}")):
        await page.goto(path)
        await page.wait_for_load_state("networkidle")
        await shopper.audit(f"31-storefront-{name}")

    # an account in two organizations chooses one
    (twice,) = await make_accounts(resources, 1)
    other = await make_org(client, resources, await make_account(resources, "admin"))
    for where, role in ((org, "manager"), (other, "finance")):
        r = await client.post(
            where.url("/members"),
            json={"email": twice.user.email, "role": role},
            headers=where.owner.headers,
        )
        assert r.status_code == 201, r.text
    chooser = await log_in(browser, storefront, twice, screenshots, lands=re.compile(r"/manage$"))
    await expect(chooser.page.get_by_role("heading", name="Your organizations")).to_be_visible()
    await expect(chooser.page.locator(".card")).to_have_count(2)
    await chooser.audit("32-manage-organizations")


async def test_the_event_form_names_a_seating_plan(
    browser: Browser,
    storefront: ApiURL,
    client: httpx.AsyncClient,
    org: Org,
    screenshots: Path,
) -> None:
    """Issue 34: the new-event form's plan select makes a seated draft (capacity = seats)."""
    venue = await org_venue(client, org)
    plan = await client.post(
        org.url(f"/venues/{venue['id']}/seating-plans"),
        json={**plan_body(1, 2, 3), "name": f"Stalls {uuid.uuid4().hex[:6]}"},
        headers=org.owner.headers,
    )
    assert plan.status_code == 201, plan.text
    me = await log_in(browser, storefront, org.owner, screenshots)
    page = me.page
    await page.goto(f"/manage/{org.id}/events/new")
    await page.locator("#ev-venue").select_option(venue["id"])
    await page.get_by_label("Seating plan").select_option(plan.json()["id"])
    await page.locator("#ev-name").fill(f"Seated gala {uuid.uuid4().hex[:6]}")
    await page.locator("#ev-capacity").fill("100")
    await page.locator("#create-event").click()
    await page.wait_for_url(re.compile(r"/events/[0-9a-f-]{36}$"))
    event_id = page.url.rsplit("/", 1)[1]
    r = await client.get(org.url(f"/events/{event_id}"), headers=org.owner.headers)
    assert (r.json()["seating_plan_id"], r.json()["capacity"]) == (plan.json()["id"], 6)
    me.problems.check()
