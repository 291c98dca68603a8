"""The checkout with the Stripe provider on: Stripe.js (localstripe's stand-in) loads under the
page's own policy and its card Element mounts. localstripe's stand-in has no
``createPaymentMethod``/``handleNextAction`` (the calls the page makes with the real Stripe.js),
so paying through Elements is not driven here; the Stripe charge path itself is tested end to
end in tests/api/payments/test_stripe.py."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from evently.infra.resources import Resources
from evently.settings import Settings
from tests.support.localstripe import TEST_API_KEY
from tests.support.servers import api_process
from tests.support.storefront import PageProblems, listed_event, new_page, shot, sign_up, word

pytestmark = pytest.mark.usefixtures("running_workers")


async def test_with_stripe_the_checkout_mounts_the_card_element_under_the_pages_policy(
    browser: Browser,
    settings: Settings,
    resources: Resources,
    localstripe_url: str,
    screenshots: Path,
) -> None:
    js = f"{localstripe_url}/js.stripe.com/v3/"
    env = {
        "EVENTLY_PAYMENT_PROVIDER": "stripe",
        "EVENTLY_STRIPE_SECRET_KEY": TEST_API_KEY,
        "EVENTLY_STRIPE_API_BASE": localstripe_url,
        "EVENTLY_STRIPE_PUBLISHABLE_KEY": "pk_test_evently",
        "EVENTLY_STRIPE_JS_URL": js,
    }
    event_id = await listed_event(resources, 4, f"Stripe night {word()}")
    with api_process(settings, **env) as url:
        page = await new_page(browser, url)
        problems = PageProblems(page)
        await sign_up(page)
        await page.goto(f"/events/{event_id}")
        await page.get_by_role("button", name="Hold seats").click()
        await page.wait_for_url(re.compile(r"/checkout/"))
        await expect(page.locator("#pay-form")).to_be_visible()
        # the card Element (the stand-in renders its fields into the mount point)
        await expect(page.locator("#card-element input").first).to_be_visible()
        assert await page.locator("#card-visa").count() == 0  # no test cards with Stripe
        await shot(page, screenshots, "40-checkout-stripe")
        async with httpx.AsyncClient(base_url=url) as c:
            policy = (await c.get("/")).headers["content-security-policy"]
        origin = localstripe_url.rstrip("/")
        assert f"script-src 'self' {origin};" in policy
        assert f"frame-src {origin};" in policy
        problems.check()
        await page.context.close()
