"""Storefront browser helpers: pages, screenshots, a signed-up buyer, a listed event, and what a
page must never show."""

from __future__ import annotations

import contextlib
import os
import random
import string
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, expect
from temporalio.client import Client

from evently.infra.resources import Resources
from tests.support.factories import make_event, unique_email
from tests.support.search import index_event
from tests.support.servers import ApiURL
from workers.main import build_workers
from workflows import common

CHROMIUM = os.environ.get("EVENTLY_CHROMIUM", "/usr/bin/chromium")
# flags measured to work headless on these machines (docs/testing.md)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

NO_CHROMIUM = f"{CHROMIUM} is missing: `apt-get install -y chromium` to run the browser tests"


def require_chromium() -> None:
    """Without Debian's chromium the browser tests are skipped with one line saying how to get
    them; under CI (CI=true, where .ci/run installs it) a missing chromium fails instead, so CI
    never passes without them."""
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{NO_CHROMIUM} (CI=true: .ci/run installs it, the browser tests never skip)")
    pytest.skip(NO_CHROMIUM)


PASSWORD = "correct horse battery"


def word() -> str:
    return "zq" + "".join(random.choices(string.ascii_lowercase, k=10))


async def listed_event(res: Resources, capacity: int, name: str) -> uuid.UUID:
    event = await make_event(res, capacity=capacity, name=name)
    await index_event(res, event.id)
    return event.id


async def sign_up(page: Page) -> str:
    """Sign up ("check your email": nobody is signed in by it), then log in."""
    email = unique_email("web")
    await page.goto("/signup")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    await page.locator("#signup-login").click()
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()
    return email


async def api_buyer(api: httpx.AsyncClient, prefix: str) -> dict[str, str]:
    """A buyer through the API, as a mobile client would: sign up (202), log in."""
    body = {"email": unique_email(prefix), "password": PASSWORD}
    assert (await api.post("/api/v1/auth/register", json=body)).status_code == 202
    r = await api.post("/api/v1/auth/login", json=body)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def shot(page: Page, screenshots: Path, name: str) -> None:
    await page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


PHONE = {"width": 390, "height": 844}


DESKTOP = {"width": 1280, "height": 900}


@dataclass
class SlowStack:
    """An API process on a Temporal namespace of its own (no worker until a test starts
    one), with a 4-second hold, a reserve that stops waiting after 3 s (202 pending) and room
    for one reserve in flight."""

    url: ApiURL
    temporal: Client
    resources: Resources

    @contextlib.asynccontextmanager
    async def workers(self) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for w in build_workers(
                self.temporal, self.resources, list(common.QUEUES.values()), self.resources.settings
            ):
                await stack.enter_async_context(w)
            yield


class PageProblems:
    """What the page must never show: CSP violations, script errors, failed assets."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))

    def _console(self, msg: ConsoleMessage) -> None:
        text = msg.text
        if msg.type == "error" and ("Content Security Policy" in text or "Refused" in text):
            self.errors.append(text)

    def check(self) -> None:
        assert not self.errors, self.errors


async def new_page(browser: Browser, base_url: str, viewport: dict[str, int] = DESKTOP) -> Page:
    context = await browser.new_context(base_url=base_url, viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    return await context.new_page()


async def tab_to(page: Page, selector: str, limit: int = 40) -> None:
    """Press Tab until ``selector`` has the focus: reachable by keyboard, in order."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")
