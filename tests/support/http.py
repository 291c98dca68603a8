"""HTTP edge checks shared by the in-process and the real-server tests: security headers and
RateLimit fields."""

from __future__ import annotations

import re

import httpx

SECURITY = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


SHOP = "https://shop.example.com"


def assert_secure(r: httpx.Response) -> None:
    for name, value in SECURITY.items():
        assert r.headers.get(name) == value, (r.request.url, name, r.headers)


_ITEM = re.compile(r'"([^"]+)"((?:;[a-z]+=\d+)+)')


def parse(field: str) -> dict[str, dict[str, int]]:
    """A RateLimit / RateLimit-Policy structured-field list → {policy: {param: value}}."""
    items = {}
    for item in field.split(","):
        match = _ITEM.fullmatch(item.strip())
        assert match, field
        params = dict(p.split("=") for p in match.group(2).strip(";").split(";"))
        items[match.group(1)] = {k: int(v) for k, v in params.items()}
    return items


def fields(r: httpx.Response) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    return parse(r.headers["ratelimit-policy"]), parse(r.headers["ratelimit"])
