"""The storefront's web security on the real app (in process, real servers): cookie flags, the
CSRF lock on forms and on the pages' API calls, the pages' own Content-Security-Policy, no
inline script anywhere, the JavaScript budget, log-out, no open redirect."""

from __future__ import annotations

import re
import uuid
from http.cookies import SimpleCookie

import httpx
import pytest

from api.storefront.endpoints import page_csp
from api.storefront.websession import ACCESS_COOKIE, CSRF_COOKIE, SESSION_COOKIE
from evently.infra.resources import Resources
from evently.settings import Settings
from tests.support.factories import make_event, unique_email

PASSWORD = "correct horse battery"
JS_BUDGET = 100 * 1024
PAGES = ["/", "/login", "/signup", f"/events/{uuid.uuid4()}"]
SIGNED_IN_PAGES = ["/bookings", f"/checkout/{uuid.uuid4()}", f"/waitlist/{uuid.uuid4()}"]


class Browserish:
    """A cookie jar that keeps Secure cookies over the test transport (the app runs with
    EVENTLY_ENV=test: Secure is on, as outside development everywhere)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.jar: dict[str, str] = {}
        self.attributes: dict[str, SimpleCookie] = {}

    def _keep(self, r: httpx.Response) -> None:
        for raw in r.headers.get_list("set-cookie"):
            c: SimpleCookie = SimpleCookie()
            c.load(raw)
            for name, morsel in c.items():
                self.attributes[name] = c
                if morsel["max-age"] == "0" or not morsel.value or morsel.value == '""':
                    self.jar.pop(name, None)
                else:
                    self.jar[name] = morsel.value

    def _cookie(self) -> dict[str, str]:
        return {"cookie": "; ".join(f"{k}={v}" for k, v in self.jar.items())} if self.jar else {}

    async def get(self, path: str, **headers: str) -> httpx.Response:
        r = await self.client.get(path, headers={**self._cookie(), **headers})
        self._keep(r)
        return r

    async def post_form(self, path: str, data: dict[str, str]) -> httpx.Response:
        r = await self.client.post(path, data=data, headers=self._cookie())
        self._keep(r)
        return r

    async def call(
        self, method: str, path: str, json: object = None, **headers: str
    ) -> httpx.Response:
        r = await self.client.request(
            method, path, json=json, headers={**self._cookie(), **headers}
        )
        self._keep(r)
        return r

    def csrf(self, html: str) -> str:
        m = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', html)
        assert m, html[:500]
        return m.group(1)


async def signed_in(client: httpx.AsyncClient) -> tuple[Browserish, str]:
    b = Browserish(client)
    page = await b.get("/signup")
    token = b.csrf(page.text)
    r = await b.post_form(
        "/signup",
        {"csrf_token": token, "email": unique_email("sess"), "password": PASSWORD, "next": "/"},
    )
    assert r.status_code == 303, r.text
    page = await b.get("/")
    return b, b.csrf(page.text)


async def test_session_cookies_are_httponly_samesite_and_secure_outside_development(
    client: httpx.AsyncClient,
) -> None:
    b, _ = await signed_in(client)
    for name in (SESSION_COOKIE, ACCESS_COOKIE, CSRF_COOKIE):
        morsel = b.attributes[name][name]
        assert morsel["httponly"] is True, name
        assert morsel["samesite"].lower() == "lax", name
        assert morsel["secure"] is True, name
        assert morsel["path"] == "/", name


async def test_pages_have_their_own_strict_policy_and_no_inline_script(
    client: httpx.AsyncClient,
) -> None:
    b, _ = await signed_in(client)
    anonymous = Browserish(client)
    for who, path in [(anonymous, p) for p in PAGES] + [(b, p) for p in SIGNED_IN_PAGES]:
        r = await who.get(path)
        assert r.status_code == 200, (path, r.status_code)
        policies = r.headers.get_list("content-security-policy")
        assert len(policies) == 1, (path, policies)  # not also the JSON one
        policy = policies[0]
        assert "script-src 'self';" in policy, policy
        assert "unsafe-inline" not in policy, policy
        assert "frame-ancestors 'none'" in policy
        assert "default-src 'none'" in policy
        assert r.headers["x-content-type-options"] == "nosniff"
        # every script comes from a file; no inline handlers either
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text), path
        assert not re.search(r"\son[a-z]+=", r.text), path
    # the JSON API keeps its own
    r = await client.get("/api/v1/events")
    assert r.headers["content-security-policy"].startswith("default-src 'none'")


async def test_no_page_ships_more_than_100_kb_of_javascript(client: httpx.AsyncClient) -> None:
    b, _ = await signed_in(client)
    anonymous = Browserish(client)
    sizes = {}
    for who, path in [(anonymous, p) for p in PAGES] + [(b, p) for p in SIGNED_IN_PAGES]:
        html = (await who.get(path)).text
        total = 0
        for src in re.findall(r'<script[^>]*\bsrc="([^"]+)"', html):
            r = await client.get(src)
            assert r.status_code == 200, src
            total += len(r.content)
        assert total > 0, path
        sizes[path] = total
    assert max(sizes.values()) <= JS_BUDGET, sizes


async def test_protected_pages_send_a_visitor_to_log_in_and_back(
    client: httpx.AsyncClient,
) -> None:
    for path in SIGNED_IN_PAGES:
        r = await client.get(path)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login?next=%2F")


@pytest.mark.usefixtures("running_workers")
async def test_a_page_call_that_changes_state_needs_the_csrf_token(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    event = await make_event(resources, capacity=5)
    b, token = await signed_in(client)
    body = {"event_id": str(event.id), "quantity": 2}
    # a cookie alone (what a cross-site form or script would ride on) changes nothing
    r = await b.call("POST", "/api/v1/bookings/reserve", body)
    assert r.status_code == 403
    assert r.json()["code"] == "csrf_failed"
    r = await b.call("POST", "/api/v1/bookings/reserve", body, **{"X-CSRF-Token": "0" * 64})
    assert r.status_code == 403
    avail = (await client.get(f"/api/v1/events/{event.id}/availability")).json()
    assert avail["available"] == 5
    # reads need no token; the page's token makes the call an ordinary API request
    assert (await b.call("GET", "/api/v1/users/bookings")).status_code == 200
    r = await b.call("POST", "/api/v1/bookings/reserve", body, **{"X-CSRF-Token": token})
    assert r.status_code == 201, r.text
    avail = (await client.get(f"/api/v1/events/{event.id}/availability")).json()
    assert avail["available"] == 3


async def test_forms_need_the_csrf_token(client: httpx.AsyncClient) -> None:
    b = Browserish(client)
    await b.get("/signup")
    email = unique_email("nocsrf")
    r = await b.post_form("/signup", {"email": email, "password": PASSWORD, "next": "/"})
    assert r.status_code == 403
    assert "Reload the page" in r.text
    assert SESSION_COOKIE not in b.jar
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 401  # no account was made


async def test_log_in_errors_are_shown_and_next_never_leaves_the_site(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email("redir")
    r = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201
    b = Browserish(client)
    token = b.csrf((await b.get("/login")).text)
    r = await b.post_form(
        "/login", {"csrf_token": token, "email": email, "password": "wrong password!", "next": "/"}
    )
    assert r.status_code == 401
    assert 'role="alert"' in r.text
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        token = b.csrf((await b.get("/login")).text)  # a log-in renews the token
        r = await b.post_form(
            "/login", {"csrf_token": token, "email": email, "password": PASSWORD, "next": evil}
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/"
        b.jar.pop(ACCESS_COOKIE, None)
        b.jar.pop(SESSION_COOKIE, None)


async def test_log_out_ends_the_session_for_good(client: httpx.AsyncClient) -> None:
    b, token = await signed_in(client)
    session = b.jar[SESSION_COOKIE]
    r = await b.post_form("/logout", {"csrf_token": token})
    assert r.status_code == 303
    assert SESSION_COOKIE not in b.jar
    assert ACCESS_COOKIE not in b.jar
    # the old session cookie, replayed, no longer signs anyone in (its family is revoked)
    b.jar[SESSION_COOKIE] = session
    assert (await b.get("/bookings")).status_code == 303


async def test_a_lapsed_access_cookie_is_renewed_from_the_session(
    client: httpx.AsyncClient,
) -> None:
    b, _ = await signed_in(client)
    b.jar.pop(ACCESS_COOKIE)
    r = await b.get("/bookings")
    assert r.status_code == 200
    assert ACCESS_COOKIE in b.jar
    assert (await b.call("GET", "/api/v1/users/bookings")).status_code == 200


async def test_a_long_open_page_renews_its_access_cookie_with_its_token(
    client: httpx.AsyncClient,
) -> None:
    b, token = await signed_in(client)
    b.jar.pop(ACCESS_COOKIE)
    assert (await b.call("GET", "/api/v1/users/bookings")).status_code == 401
    assert (await b.call("POST", "/session/renew")).status_code == 403  # no token: nothing
    assert ACCESS_COOKIE not in b.jar
    r = await b.call("POST", "/session/renew", **{"X-CSRF-Token": token})
    assert r.status_code == 204
    assert (await b.call("GET", "/api/v1/users/bookings")).status_code == 200
    # once logged out, there is nothing to renew
    await b.post_form("/logout", {"csrf_token": token})
    r = await b.call("POST", "/session/renew", **{"X-CSRF-Token": token})
    assert r.status_code == 401


def test_with_stripe_the_policy_allows_stripes_documented_origins_only() -> None:
    policy = page_csp(Settings(env="test", payment_provider="stripe"))
    assert "script-src 'self' https://js.stripe.com;" in policy
    assert "connect-src 'self' https://api.stripe.com;" in policy
    assert "frame-src https://js.stripe.com https://hooks.stripe.com;" in policy
    assert "frame-src 'none'" in page_csp(Settings(env="test"))
