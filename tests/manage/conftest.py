"""The back office's browser tests reuse the storefront's: Debian's Chromium through
Playwright, the API as a real server process, screenshots."""

from tests.storefront.conftest import browser, screenshots, storefront

__all__ = ["browser", "screenshots", "storefront"]
