"""The buyer's journeys in a real browser (headless Chromium) over a real API process and the
real workers: find → hold 2 → pay → see the booking and its tickets; a hold that lapses on
screen and gives its seats back; a sold-out event that offers the waitlist, and the offer
taken; the whole purchase with the keyboard alone. Every page is screenshotted."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import text

from evently.infra.resources import Resources
from tests.support.factories import make_account, unique_email
from tests.support.servers import ApiURL
from tests.support.storefront import (
    PASSWORD,
    PHONE,
    PageProblems,
    SlowStack,
    api_buyer,
    listed_event,
    new_page,
    shot,
    sign_up,
    tab_to,
    word,
)

pytestmark = pytest.mark.usefixtures("running_workers")


async def availability(url: str, event_id: uuid.UUID) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=url) as c:
        r = await c.get(f"/api/v1/events/{event_id}/availability")
        assert r.status_code == 200
        return dict(r.json())


async def test_a_buyer_finds_an_event_holds_two_seats_pays_and_sees_the_booking(
    browser: Browser, storefront: ApiURL, resources: Resources, screenshots: Path
) -> None:
    name = f"Jazz night {word()}"
    event_id = await listed_event(resources, 10, name)
    page = await new_page(browser, storefront)
    problems = PageProblems(page)
    await page.goto("/signup")
    await shot(page, screenshots, "01-signup")
    await sign_up(page)

    # find it: a suggestion while typing, then the search
    await page.goto("/")
    await page.get_by_label("Search events, venues, cities").fill(name.split()[-1])
    await expect(page.locator("#suggestions option").first).to_have_attribute("value", name)
    await page.get_by_role("button", name="Search").click()
    await expect(page.get_by_role("link", name=name)).to_be_visible()
    await expect(page.locator("#search-status")).to_have_text("1 event found")
    await shot(page, screenshots, "02-home-search")
    await page.get_by_role("link", name=name).click()

    # the event: live availability, hold 2
    await expect(page.locator("#event-name")).to_have_text(name)
    await expect(page.locator("#availability")).to_have_text("10 of 10 seats available.")
    # the refund policy before payment (issue 29; the default: until the start)
    await expect(page.locator("#event-refunds")).to_have_text(
        "Refunds: until the start of the event."
    )
    await shot(page, screenshots, "03-event")
    await page.get_by_label("Number of seats").fill("2")
    await page.get_by_role("button", name="Hold seats").click()
    await page.wait_for_url(re.compile(r"/checkout/"))
    booking_id = page.url.rsplit("/", 1)[1]

    # checkout: the server's countdown, a declined card, then a good one
    await expect(page.locator("#booking-summary")).to_contain_text("2 seats")
    await expect(page.locator("#refund-policy")).to_have_text(
        "Refunds: until the start of the event."
    )
    seconds = int(await page.locator("#countdown").get_attribute("data-seconds-left") or "0")
    assert 250 <= seconds <= 300  # the 300 s hold, counted from the server's expiry
    assert (await availability(storefront, event_id))["held"] == 2
    # the price breakdown before paying, and the invoice's billing details (issue 31)
    await expect(page.locator("#price-breakdown")).to_contain_text("Total")
    await page.get_by_text("Invoice details").click()
    await page.get_by_label("Name on the invoice").fill("Acme AG")
    await page.get_by_label("VAT ID").fill("ATU1234567")
    await shot(page, screenshots, "04-checkout")
    await page.get_by_label("Card declined").check()
    await page.get_by_role("button", name="Pay").click()
    await expect(page.locator("#checkout-message")).to_contain_text("declined")
    await shot(page, screenshots, "05-checkout-declined")
    await page.get_by_label("Visa — succeeds").check()
    await page.get_by_role("button", name="Pay").click()
    await expect(page.locator("#booking-summary")).to_contain_text("Booking confirmed")
    await shot(page, screenshots, "06-confirmed")
    async with resources.engine.connect() as conn:
        buyer = await conn.scalar(
            text("SELECT buyer FROM invoices WHERE booking_id = :b"), {"b": booking_id}
        )
    assert buyer == {"name": "Acme AG", "address": "", "vat_id": "ATU1234567"}

    # my bookings: the booking, confirmed, with its two tickets (QR codes) and the PDF
    await page.get_by_role("link", name="See your tickets in My bookings").click()
    card = page.locator(f'[data-booking-id="{booking_id}"]')
    await expect(card).to_have_attribute("data-status", "confirmed")
    await expect(card.locator("img")).to_have_count(2)
    for img in await card.locator("img").all():  # each QR code really loaded (an SVG image)
        await expect(img).to_have_js_property("complete", True)
        assert await img.evaluate("i => i.naturalWidth") > 0
    pdf_link = card.get_by_role("link", name="Download tickets (PDF)")
    await expect(pdf_link).to_be_visible()
    pdf = await page.context.request.get(await pdf_link.get_attribute("href") or "")
    assert pdf.status == 200  # with the page's cookie session, like the QR images
    assert pdf.headers["content-type"] == "application/pdf"
    await shot(page, screenshots, "07-my-bookings")
    a = await availability(storefront, event_id)
    assert (a["sold"], a["held"], a["available"]) == (2, 0, 8)

    # log out: the session is over for the pages and for the API
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("link", name="Log in")).to_be_visible()
    await page.goto("/bookings")
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    await shot(page, screenshots, "08-login")
    problems.check()
    await page.context.close()


async def test_a_late_reserve_waits_on_screen_then_a_hold_lapses_and_the_seats_come_back(
    browser: Browser, slow_stack: SlowStack, screenshots: Path
) -> None:
    """No worker yet: the reserve answers 202 pending and the checkout says so while it polls
    the booking; a worker starts, the hold appears with its (4 s) countdown, which runs out on
    screen, and the page shows the seats back. At phone width."""
    name = f"Short hold {word()}"
    url = slow_stack.url
    event_id = await listed_event(slow_stack.resources, 2, name)
    page = await new_page(browser, url, viewport=PHONE)
    problems = PageProblems(page)
    await sign_up(page)
    await page.goto(f"/events/{event_id}")
    await expect(page.locator("#availability")).to_have_text("2 of 2 seats available.")
    await shot(page, screenshots, "10-event-phone")
    await page.get_by_role("button", name="Hold seats").click()
    await page.wait_for_url(re.compile(r"/checkout/"))
    await expect(page.locator("#booking-summary")).to_contain_text("being reserved")
    await expect(page.locator("#pay-form")).to_be_hidden()
    await shot(page, screenshots, "11-checkout-pending-phone")

    async with slow_stack.workers():
        await expect(page.locator("#hold")).to_be_visible(timeout=20_000)
        await expect(page.locator("#booking-summary")).to_contain_text("held")
        assert (await availability(url, event_id))["available"] == 0
        # nothing runs off the side at phone width
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        await shot(page, screenshots, "12-checkout-phone")
        # the countdown reaches 00:00, the page says the hold ended and shows the seats back
        await expect(page.locator("#countdown")).to_have_text("00:00", timeout=10_000)
        await expect(page.locator("#checkout-message")).to_contain_text(
            "Your hold has ended", timeout=20_000
        )
        await expect(page.locator("#checkout-next")).to_contain_text("2 seats are available now")
        await expect(page.locator("#pay-form")).to_be_hidden()
        await shot(page, screenshots, "13-hold-expired-phone")
        await page.get_by_role("link", name="Back to the event").click()
        await expect(page.locator("#availability")).to_have_text("2 of 2 seats available.")
        a = await availability(url, event_id)
        assert (a["available"], a["held"], a["sold"]) == (2, 0, 0)
    problems.check()
    await page.context.close()


async def test_a_busy_reserve_path_tells_the_buyer_to_retry(
    browser: Browser, slow_stack: SlowStack, screenshots: Path
) -> None:
    """The process's only reserve slot is taken by another buyer's reserve (no worker answers
    it for 3 s): the page's click is shed with 503 overloaded, and says so, holding nothing."""
    url = slow_stack.url
    event_id = await listed_event(slow_stack.resources, 5, f"Busy {word()}")
    other_event = await listed_event(slow_stack.resources, 5, f"Elsewhere {word()}")
    page = await new_page(browser, url)
    problems = PageProblems(page)
    await sign_up(page)
    await page.goto(f"/events/{event_id}")
    await expect(page.locator("#availability")).to_have_text("5 of 5 seats available.")
    async with httpx.AsyncClient(base_url=url, timeout=30) as api:
        auth = await api_buyer(api, "busy")
        rival = asyncio.create_task(
            api.post(
                "/api/v1/bookings/reserve",
                json={"event_id": str(other_event), "quantity": 1},
                headers=auth,
            )
        )
        # its workflow has started: the rival's reserve holds the slot until it answers
        query = f'EventId = "{other_event}" AND ExecutionStatus = "Running"'
        for _ in range(100):
            if [w async for w in slow_stack.temporal.list_workflows(query)]:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the rival's reserve never started")
        await page.get_by_role("button", name="Hold seats").click()
        await expect(page.locator("#event-message")).to_contain_text("We are very busy")
        await shot(page, screenshots, "15-event-overloaded")
        late = await rival
        assert late.status_code == 202, late.text  # it was in flight all along
    assert (await availability(url, event_id))["held"] == 0
    await expect(page.get_by_role("button", name="Hold seats")).to_be_enabled()
    problems.check()
    await page.context.close()


async def test_a_sold_out_event_offers_the_waitlist_and_its_offer_can_be_taken(
    browser: Browser, storefront: ApiURL, resources: Resources, screenshots: Path
) -> None:
    name = f"Sold out {word()}"
    event_id = await listed_event(resources, 1, name)
    page = await new_page(browser, storefront)
    problems = PageProblems(page)
    await sign_up(page)
    await page.goto(f"/events/{event_id}")
    await expect(page.locator("#availability")).to_have_text("1 of 1 seats available.")
    # more seats than are left: the reserve's 409 sold_out, said plainly, nothing held
    await page.get_by_label("Number of seats").fill("2")
    await page.get_by_role("button", name="Hold seats").click()
    await expect(page.locator("#event-message")).to_contain_text(
        "Sold out: there are not enough seats left"
    )
    await shot(page, screenshots, "19-event-not-enough-seats")
    assert (await availability(storefront, event_id))["available"] == 1
    # another buyer holds the only seat (through the API, as a mobile client would); the
    # page learns it by itself
    async with httpx.AsyncClient(base_url=storefront, timeout=20) as api:
        auth = await api_buyer(api, "rival")
        r = await api.post(
            "/api/v1/bookings/reserve",
            json={"event_id": str(event_id), "quantity": 1},
            headers=auth,
        )
        assert r.status_code == 201, r.text
        rival_booking = r.json()["booking_id"]

        await expect(page.locator("#availability")).to_contain_text("Sold out.")
        await expect(page.get_by_role("button", name="Hold seats")).to_be_hidden()
        await page.get_by_label("Seats wanted").fill("1")
        await shot(page, screenshots, "20-event-sold-out")
        await page.get_by_role("button", name="Join the waitlist").click()
        await page.wait_for_url(re.compile(r"/waitlist/"))
        await expect(page.locator("#waitlist-status")).to_contain_text("You are number 1 in line")
        await shot(page, screenshots, "21-waitlist-position")

        # the rival gives the seat back: it is offered to the head of the line, on screen
        r = await api.delete(f"/api/v1/bookings/{rival_booking}", headers=auth)
        assert r.status_code == 200, r.text
    await expect(page.get_by_role("button", name="Take the seats")).to_be_visible(timeout=20_000)
    await shot(page, screenshots, "22-waitlist-offer")
    await page.get_by_role("button", name="Take the seats").click()
    await page.wait_for_url(re.compile(r"/checkout/"))
    await expect(page.locator("#booking-summary")).to_contain_text("1 seat")
    await expect(page.get_by_role("button", name="Pay")).to_be_visible()
    a = await availability(storefront, event_id)
    assert (a["available"], a["held"]) == (0, 1)
    problems.check()
    await page.context.close()


async def test_a_buyer_goes_from_home_to_a_confirmed_booking_with_the_keyboard_alone(
    browser: Browser, storefront: ApiURL, resources: Resources, screenshots: Path
) -> None:
    name = f"Keyboard gig {word()}"
    event_id = await listed_event(resources, 5, name)
    page = await new_page(browser, storefront)
    problems = PageProblems(page)
    email = unique_email("keys")
    async with httpx.AsyncClient(base_url=storefront) as api:
        r = await api.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 202
    kb = page.keyboard

    await page.goto("/")
    await tab_to(page, 'a[href="/login"]')
    await kb.press("Enter")
    await page.wait_for_url(re.compile(r"/login"))
    await tab_to(page, "#email")
    await kb.type(email)
    await kb.press("Tab")
    await kb.type(PASSWORD)
    await kb.press("Enter")
    await page.wait_for_url(re.compile(r"/$"))

    await tab_to(page, "#q")
    await kb.type(name.split()[-1])
    await kb.press("Enter")
    await expect(page.locator("#search-status")).to_have_text("1 event found")
    await tab_to(page, f'a[href="/events/{event_id}"]')
    await kb.press("Enter")
    await expect(page.locator("#availability")).to_have_text("5 of 5 seats available.")
    await tab_to(page, "#quantity")
    await kb.press("Control+A")
    await kb.type("2")
    await tab_to(page, "#reserve")
    await kb.press("Enter")
    await page.wait_for_url(re.compile(r"/checkout/"))
    await expect(page.locator("#pay-form")).to_be_visible()
    await tab_to(page, "#card-visa")
    await tab_to(page, "#pay")
    await kb.press("Enter")
    await expect(page.locator("#booking-summary")).to_contain_text("Booking confirmed")
    # the focus moves to the next step: Enter opens the bookings
    await kb.press("Enter")
    await page.wait_for_url(re.compile(r"/bookings$"))
    await expect(page.locator('[data-status="confirmed"]')).to_have_count(1)
    await shot(page, screenshots, "30-keyboard-done")
    a = await availability(storefront, event_id)
    assert (a["sold"], a["available"]) == (2, 3)
    problems.check()
    await page.context.close()


async def test_a_queued_on_sale_puts_the_buyer_in_line_then_holds_their_seats(
    browser: Browser, storefront: ApiURL, resources: Resources, screenshots: Path
) -> None:
    """The organizer queues the on-sale (`queue: "on"`): the page's reserve answers 403
    admission_required, the page takes a place in the waiting room, shows it, and once the
    admission workflow lets the buyer in it reserves with the admission token: checkout."""
    event_id = await listed_event(resources, 3, f"Queued {word()}")
    admin = await make_account(resources, "admin")
    async with httpx.AsyncClient(base_url=storefront, timeout=20) as api:
        r = await api.patch(
            f"/api/v1/admin/events/{event_id}", json={"queue": "on"}, headers=admin.headers
        )
        assert r.status_code == 200, r.text
    page = await new_page(browser, storefront)
    problems = PageProblems(page)
    await sign_up(page)
    await page.goto(f"/events/{event_id}")
    await expect(page.locator("#availability")).to_have_text("3 of 3 seats available.")
    await page.get_by_label("Number of seats").fill("1")
    await page.get_by_role("button", name="Hold seats").click()
    await expect(page.locator("#event-message")).to_contain_text("You are number 1 in line")
    await shot(page, screenshots, "23-event-waiting-room")
    await page.wait_for_url(re.compile(r"/checkout/"), timeout=30_000)
    await expect(page.locator("#hold")).to_be_visible()
    assert (await availability(storefront, event_id))["held"] == 1
    problems.check()
    await page.context.close()


async def test_a_buyer_chooses_a_ticket_type_and_a_promo_code_and_pays_the_discounted_price(
    browser: Browser, storefront: ApiURL, resources: Resources, screenshots: Path
) -> None:
    """Ticket types and promo codes on the page: the type list with live availability (a type
    outside its sales window cannot be chosen), an unknown code said plainly with nothing held,
    then VIP with a 50% code: the checkout shows the line, its discount and the total."""
    event_id = await listed_event(resources, 10, f"Types {word()}")
    admin = await make_account(resources, "admin")
    base = f"/api/v1/admin/events/{event_id}"
    async with httpx.AsyncClient(base_url=storefront, timeout=20, headers=admin.headers) as api:
        r = await api.post(
            f"{base}/ticket-types", json={"name": "VIP", "price": "80.00", "capacity": 2}
        )
        assert r.status_code == 201, r.text
        vip = r.json()["id"]
        r = await api.post(
            f"{base}/ticket-types",
            json={"name": "Late bird", "price": "30.00", "sales_start": "2099-01-01T00:00:00Z"},
        )
        assert r.status_code == 201, r.text
        r = await api.post(
            f"{base}/promo-codes",
            json={"code": "HALF", "percent_off": "50", "max_uses": 5, "ticket_type_ids": [vip]},
        )
        assert r.status_code == 201, r.text
    page = await new_page(browser, storefront)
    problems = PageProblems(page)
    await sign_up(page)
    await page.goto(f"/events/{event_id}")
    select = page.get_by_label("Ticket type")
    await expect(select).to_be_visible()
    await expect(select.locator("option", has_text="VIP")).to_contain_text("2 left")
    await expect(select.locator("option", has_text="Late bird")).to_be_disabled()
    await select.select_option(value=vip)
    await page.get_by_label("Number of seats").fill("1")
    await page.get_by_label("Promo code (optional)").fill("NOPE")
    await page.get_by_role("button", name="Hold seats").click()
    await expect(page.locator("#event-message")).to_contain_text("We do not know that promo code")
    assert (await availability(storefront, event_id))["held"] == 0
    await page.get_by_label("Promo code (optional)").fill("half")  # codes ignore case
    await shot(page, screenshots, "24-event-ticket-types")
    await page.get_by_role("button", name="Hold seats").click()
    await page.wait_for_url(re.compile(r"/checkout/"))
    await expect(page.locator("#booking-summary")).to_contain_text("40.00")
    await expect(page.locator("#booking-lines")).to_contain_text("1 \u00d7 VIP at")
    await expect(page.locator("#booking-lines")).to_contain_text("40.00")
    await shot(page, screenshots, "25-checkout-discounted")
    problems.check()
    await page.context.close()
