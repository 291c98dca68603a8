"""Browser fixtures: Debian's headless Chromium driven by Playwright (async API, on the
session's event loop, where the real workers of ``running_workers`` run), and the API as a real
server process. Screenshots go to ``test-artifacts/storefront/`` (docs/storefront.md)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright
from temporalio.client import Client

from evently.infra.resources import Resources
from evently.settings import Settings
from tests.support.servers import ApiURL, api_process
from tests.support.storefront import (
    CHROMIUM,
    CHROMIUM_ARGS,
    NO_CHROMIUM,
    SlowStack,
    require_chromium,
)
from tests.support.temporal import register_namespace
from workflows.connection import connect

SCREENSHOTS = Path(
    os.environ.get(
        "EVENTLY_SCREENSHOT_DIR", Path(__file__).resolve().parents[2] / "test-artifacts/storefront"
    )
)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Every browser test skipped for want of chromium reports this file's location, so `-ra`
    folds them into ONE summary line (by default each names its own test)."""
    report = yield
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and NO_CHROMIUM in str(longrepr[2]):
        report.longrepr = (__file__, require_chromium.__code__.co_firstlineno, longrepr[2])
    return report


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
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
