"""axe-core (vendored from npm: tests/support/vendor/axe-core-*.min.js, MPL-2.0, its licence
beside it) injected into a page by the test (never served by the app), and its verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Page

AXE = next((Path(__file__).parent / "vendor").glob("axe-core-*.min.js"))
SERIOUS = ("serious", "critical")


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    """The page's serious and critical accessibility violations (WCAG 2.x A/AA rules)."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        # through the DevTools protocol, as the page's CSP (no inline script) would refuse a tag
        await page.evaluate(f"() => {{ {AXE.read_text()}\n}}")
    found = await page.evaluate(
        """async () => {
            const r = await axe.run(document, {runOnly: {type: 'tag',
                values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    return [v for v in found if v["impact"] in SERIOUS]
