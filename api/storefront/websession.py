"""Cookie sessions for the storefront's pages, and the bridge that lets those pages call the
JSON API exactly as an API client does.

- **Cookies** (all ``HttpOnly``, ``SameSite=Lax``, ``Path=/``, ``Secure`` outside
  development): ``evently_session`` holds the session's refresh token (an ordinary refresh
  token of :mod:`evently.tokens`: stored hashed in Postgres, revoked at log-out, its family
  revoked on reuse), ``evently_access`` a short-lived access token (the API's own JWT),
  ``evently_csrf`` a random nonce. Scripts never see a token.
- **CSRF**: every page carries a token bound to the session: ``HMAC-SHA256(jwt_secret,
  "session:" + session id)``, the session id being the refresh-token family (the ``sid`` of
  the access token, or of the session cookie's refresh token once the access cookie has
  lapsed). A token of one session is refused in another, and one cannot be planted with a
  cookie: nobody without the secret can make it. A visitor with no session (the log-in and
  sign-up forms) gets ``HMAC-SHA256(jwt_secret, "visitor:" + nonce)`` (a signed
  double-submit token), which is never accepted once there is a session. Forms send it as
  ``csrf_token``, scripts as the ``X-CSRF-Token`` header. A request that changes state and
  authenticates by cookie without the matching token is refused ``403 csrf_failed``.
  ``SameSite=Lax`` already keeps the cookies off cross-site POSTs; the token is the second
  lock.
- **The bridge** (:class:`CookieAuth`, a pure-ASGI layer in front of the reserve fast path):
  an ``/api/`` request without ``Authorization`` but with the access cookie gets
  ``Authorization: Bearer <that token>`` added, after the CSRF check. From there on it *is*
  an API request: the same routes, token check, rate limits, admission control, fast path and
  202-pending answers. API clients that send a bearer token are untouched (no cookie is read).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import render
from evently.errors import CsrfFailed
from evently.security import access_token_session
from evently.settings import Settings

SESSION_COOKIE = "evently_session"
ACCESS_COOKIE = "evently_access"
CSRF_COOKIE = "evently_csrf"
CSRF_HEADER = b"x-csrf-token"
CSRF_FIELD = "csrf_token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def csrf_token(secret: str, nonce: str, session_id: str | None) -> str:
    """The token a page carries: bound to the session when there is one, else to the nonce
    in the visitor's CSRF cookie."""
    subject = f"session:{session_id}" if session_id else f"visitor:{nonce}"
    return hmac.new(secret.encode(), f"evently-csrf:{subject}".encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: str, nonce: str | None, session_id: str | None, token: str | None) -> bool:
    if not token or not (nonce or session_id):
        return False
    return hmac.compare_digest(csrf_token(secret, nonce or "", session_id), token)


def parse_cookies(raw: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header: no session, not an error
        return {}
    return {k: m.value for k, m in jar.items()}


def secure_cookies(settings: Settings) -> bool:
    return settings.env != "development"


class CookieAuth:
    """Cookie → bearer for the storefront's calls to ``/api/`` (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, secret: str) -> None:
        self.app = app
        self.secret = secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        raw: bytes | None = None
        header_token: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                await self.app(scope, receive, send)  # an API client: cookies play no part
                return
            if name == b"cookie":
                raw = value if raw is None else raw + b"; " + value
            elif name == CSRF_HEADER:
                header_token = value
        if raw is None:
            await self.app(scope, receive, send)
            return
        cookies = parse_cookies(raw.decode("latin-1"))
        access = cookies.get(ACCESS_COOKIE)
        if not access:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in _SAFE and not csrf_valid(
            self.secret,
            cookies.get(CSRF_COOKIE),
            access_token_session(self.secret, access),
            header_token.decode("latin-1") if header_token else None,
        ):
            await render(CsrfFailed())(scope, receive, send)
            return
        bearer = (b"authorization", b"Bearer " + access.encode("latin-1"))
        await self.app({**scope, "headers": [*scope["headers"], bearer]}, receive, send)
