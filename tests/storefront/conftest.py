"""Browser fixtures: Debian's headless Chromium driven by Playwright (async API, on the
session's event loop, where the real workers of ``running_workers`` run), and the API as a real
server process. Screenshots go to ``test-artifacts/storefront/`` (docs/storefront.md)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright
from temporalio.client import Client

from evently.infra.resources import Resources
from evently.settings import Settings
from tests.conftest import register_namespace
from tests.servers import ApiURL, api_process
from workers.main import build_workers
from workflows import common
from workflows.connection import connect

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
SCREENSHOTS = Path(
    os.environ.get(
        "EVENTLY_SCREENSHOT_DIR", Path(__file__).resolve().parents[2] / "test-artifacts/storefront"
    )
)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run does it)"
    )
    async with async_playwright() as pw:
        # Playwright gives the browser a fresh temporary profile (the --user-data-dir advice)
        b = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture(scope="module")
def storefront(settings: Settings) -> Iterator[ApiURL]:
    """The API process with the normal 5-minute hold."""
    with api_process(settings) as url:
        yield url


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


@pytest.fixture(scope="module")
async def slow_stack(
    settings: Settings, resources: Resources, temporal_client: Client
) -> AsyncIterator[SlowStack]:
    namespace = await register_namespace(temporal_client)
    assert settings.temporal_address
    client = await connect(settings.temporal_address, namespace)
    env = {
        "EVENTLY_HOLD_SECONDS": "4",
        "EVENTLY_RESERVE_TIMEOUT_SECONDS": "3",
        # one reserve in flight at a time, no wait for a slot: a second one meanwhile is shed
        # (503 overloaded)
        "EVENTLY_RESERVE_MAX_IN_FLIGHT": "1",
        "EVENTLY_RESERVE_MAX_WAIT_SECONDS": "0",
        "EVENTLY_TEMPORAL_NAMESPACE": namespace,
    }
    with api_process(settings, **env) as url:
        yield SlowStack(url, client, resources)


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
