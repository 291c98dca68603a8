"""RFC 9457 problem+json answers, checked one way (evently/errors.py makes them)."""

from __future__ import annotations

from typing import Any

import httpx


def assert_problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """``r`` is a problem+json answer with ``status`` (and ``code``, when given), with every
    member a problem carries; returns its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = dict(r.json())
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["type"]
    assert body["code"]
    if code is not None:
        assert body["code"] == code, body
    return body


def assert_handled(r: httpx.Response) -> None:
    """Any answer but a 500: a 4xx/5xx one is problem+json with a code (the reliability suite,
    where a crash or an outage may make any status right)."""
    assert r.status_code != 500, r.text
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json"), r.text
        assert r.json().get("code"), r.text
