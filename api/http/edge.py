"""The API's HTTP edge: one pure-ASGI layer in front of everything else (the reserve fast path
included), so every answer — a 404 for an unknown path, a fast-path ``409 sold_out``, a
``413`` it gives itself — leaves with the same headers.

- **Body limits.** A request whose declared ``Content-Length`` is over the limit of its path
  is answered ``413 payload_too_large`` (problem+json) at once, before anything reads or
  parses it. A body without a length (``Transfer-Encoding: chunked``) is counted as the app
  reads it; when the count passes the limit, the 413 goes out and reading stops (the app's
  read fails, and whatever it answers after that is dropped). The server discards the rest
  of the body as it arrives, so memory does not grow with it.
- **CORS** for the configured origins only: a preflight (``OPTIONS`` with
  ``Access-Control-Request-Method``) from a listed origin is answered ``204`` here with the
  methods and request headers the API takes; answers to a listed origin carry
  ``Access-Control-Allow-Origin`` (that origin, never ``*``), ``-Allow-Credentials: true`` and
  the response headers a script may read. Any other origin gets nothing added (its
  preflight reaches the router: ``405`` problem+json), and the browser refuses.
- **Security headers** on every answer: ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: no-referrer``, a ``Content-Security-Policy`` that lets a JSON answer
  load nothing (``default-src 'none'; frame-ancestors 'none'``) — the docs pages get one that
  allows what they load (:func:`docs_csp`) — and ``Strict-Transport-Security`` when the
  request came over HTTPS (``scope["scheme"]``, which a trusted proxy layer in front may set).
- **Rate-limit fields** recorded by the route's limiter (:mod:`api.http.ratelimit`).

Everything is computed once per app: a request costs one pass over its headers and the
append of a prebuilt header tuple.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http import ratelimit
from api.http.headers import CSP, HSTS, SECURITY_HEADERS, Headers
from api.problems import render
from evently.errors import PayloadTooLarge

# What FastAPI's /docs (Swagger UI) and /redoc pages load: their bundles and styles from
# jsDelivr, ReDoc's fonts from Google Fonts, FastAPI's favicon, data: images, a worker from a
# blob (ReDoc); they fetch /openapi.json and "Try it out" calls from this origin. Inline
# scripts are allowed by their hash only (computed from the page being served).
DOCS_CSP = (
    "default-src 'none'; "
    "script-src https://cdn.jsdelivr.net{hashes}; "
    "style-src https://cdn.jsdelivr.net https://fonts.googleapis.com 'unsafe-inline'; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "font-src https://fonts.gstatic.com; "
    "connect-src 'self'; "
    "worker-src blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

CORS_METHODS = b"GET, POST, PUT, PATCH, DELETE"
CORS_REQUEST_HEADERS = b"Authorization, Content-Type, Idempotency-Key, If-None-Match, X-Request-ID"
CORS_EXPOSED_HEADERS = (
    b"ETag, Link, Location, RateLimit, RateLimit-Policy, Retry-After, X-Request-ID"
)
CORS_MAX_AGE = b"600"  # seconds a browser may reuse a preflight answer

_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script\s*>", re.S | re.I)


def docs_csp(html: bytes) -> bytes:
    """The docs policy for this page: its inline scripts allowed by their SHA-256 hash."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return DOCS_CSP.format(hashes=hashes).encode("ascii")


class _BodyTooLarge(Exception):
    """Raised into the app's body read once the streamed body passed the limit."""


class HttpEdge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        body_limits: Mapping[str, int] | None = None,
        cors_origins: Iterable[str] = (),
        docs_paths: Iterable[str] = (),
        page_paths: Callable[[str], bool] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_limits = dict(body_limits or {})
        self.docs_paths = frozenset(docs_paths)
        # HTML pages that bring their own Content-Security-Policy (the storefront, issue 19)
        self.page_paths = page_paths
        origins = [o.encode("latin-1") for o in cors_origins]
        self._origins = frozenset(origins)
        vary: Headers = ((b"vary", b"Origin"),) if origins else ()
        # prebuilt: what every answer gets, by (allowed origin or None, https); docs pages
        # get the same without the JSON policy (theirs depends on the page)
        self._headers: dict[tuple[bytes | None, bool], Headers] = {}
        self._docs_headers: dict[tuple[bytes | None, bool], Headers] = {}
        for origin in (None, *origins):
            cors: Headers = ()
            if origin is not None:
                cors = (
                    (b"access-control-allow-origin", origin),
                    (b"access-control-allow-credentials", b"true"),
                    (b"access-control-expose-headers", CORS_EXPOSED_HEADERS),
                )
            for https in (False, True):
                base = SECURITY_HEADERS + vary + cors + (HSTS if https else ())
                self._docs_headers[origin, https] = base
                self._headers[origin, https] = base + CSP

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length: bytes | None = None
        chunked = preflight = False
        origin: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                preflight = True
        if origin is not None and origin not in self._origins:
            origin = None
        https = scope.get("scheme") == "https"
        path: str = scope["path"]
        limit = self.body_limits.get(path, self.max_body_bytes)
        if path.endswith("/seating-plans"):  # a stadium's plan (issue 34)
            limit = max(limit, self.body_limits.get("*/seating-plans", limit))
        if length is not None and _over(length, limit):
            await _refuse(send, self._headers[origin, https], limit)
            return
        if preflight and origin is not None and scope["method"] == "OPTIONS":
            await _preflight(send, self._headers[origin, https])
            return
        if path in self.docs_paths:
            await self._docs(scope, receive, send, self._docs_headers[origin, https])
            return

        extra = self._headers[origin, https]
        if self.page_paths is not None and self.page_paths(path):
            extra = self._docs_headers[origin, https]  # without the JSON policy: the page's own
        started = refused = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 is out; the app's late answer goes nowhere
            if message["type"] == "http.response.start":
                started = True
                headers = [*message.get("headers", ()), *extra]
                hits = scope.get(ratelimit.HITS)
                if hits:
                    headers += ratelimit.fields(hits)
                message = {**message, "headers": headers}
            await send(message)

        if length is not None or (not chunked and scope["method"] in _BODYLESS):
            # a declared length within the limit binds the body (the server's parser holds
            # the client to it); a GET without one has no body: nothing to count
            await self.app(scope, receive, send_with_headers)
            return

        received = 0

        async def receive_limited() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started and not refused:
                        refused = True
                        await _refuse(send, extra, limit)
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, receive_limited, send_with_headers)
        except Exception:
            if refused:
                return  # the app failed reading the body it was cut off from: answered
            raise

    async def _docs(self, scope: Scope, receive: Receive, send: Send, extra: Headers) -> None:
        """A docs page, buffered (a few kB, rarely asked for) to hash its inline scripts."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            csp = (b"content-security-policy", docs_csp(body))
            await send({**start, "headers": [*start.get("headers", ()), *extra, csp]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffered)


_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})


def _over(length: bytes, limit: int) -> bool:
    try:
        return int(length) > limit
    except ValueError:  # the server's HTTP parser refuses a malformed length before us
        return False


async def _refuse(send: Send, extra: Headers, limit: int) -> None:
    response = render(
        PayloadTooLarge(
            f"The request body is over this endpoint's limit of {limit} bytes.", max_bytes=limit
        )
    )
    headers = [*response.raw_headers, *extra]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def _preflight(send: Send, extra: Headers) -> None:
    headers = [
        *extra,
        (b"access-control-allow-methods", CORS_METHODS),
        (b"access-control-allow-headers", CORS_REQUEST_HEADERS),
        (b"access-control-max-age", CORS_MAX_AGE),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
