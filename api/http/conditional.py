"""Conditional GETs (RFC 9110 §13): an ``ETag`` on the answer, ``304 Not Modified`` to a
request whose ``If-None-Match`` names it, and ``Cache-Control: no-cache`` so a browser or a
proxy may keep the answer but asks again every time (with the tag) instead of guessing.

The tag is a digest of exactly what the representation is made of, so it changes whenever
the body would: for availability, the cached snapshot's counters, status, waitlist length
and version (read from Redis, so a 304 costs no Postgres read when the cache answers); for
an event, its ``updated_at`` (bumped by every change to the row, seat counts included).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import Header, Response

CACHE_CONTROL = "no-cache"

IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        description="the `ETag` of the copy you have: `304 Not Modified` when it is current",
    ),
]


def etag(*parts: object) -> str:
    """A strong entity tag for a representation made of ``parts``."""
    joined = "\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")
    return f'"{hashlib.blake2b(joined, digest_size=12).hexdigest()}"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """``If-None-Match`` uses the weak comparison: ``W/"x"`` matches ``"x"``; ``*`` matches."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == tag:
            return True
    return False


def validated(response: Response, tag: str, if_none_match: str | None) -> Response | None:
    """Tag the answer; a ``304`` to return instead of the body when the client has it."""
    if matches(if_none_match, tag):
        return Response(status_code=304, headers={"ETag": tag, "Cache-Control": CACHE_CONTROL})
    response.headers["ETag"] = tag
    response.headers["Cache-Control"] = CACHE_CONTROL
    return None


_TAG = {
    "description": "this representation's entity tag (send it back in `If-None-Match`)",
    "required": True,
    "schema": {"type": "string"},
}
_NO_CACHE = {
    "description": "`no-cache`: keep it, but revalidate with `If-None-Match` before reuse",
    "required": True,
    "schema": {"type": "string"},
}


def conditional_responses(status_code: int = 200) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a conditional GET: the tagged answer and the 304."""
    headers = {"ETag": _TAG, "Cache-Control": _NO_CACHE}
    return {
        status_code: {"headers": headers},
        304: {
            "description": "Not modified: the `If-None-Match` tag is current",
            "headers": headers,
        },
    }
