"""The storefront's web security on the real app (in process, real servers): cookie flags, the
CSRF lock on forms and on the pages' API calls, the pages' own Content-Security-Policy, no
inline script anywhere, the JavaScript budget, log-out, no open redirect; the sign-up and
log-in forms checked as the API checks its bodies, on the API's rate-limit budget."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.cookies import SimpleCookie

import httpx
import pytest

from api.storefront.endpoints import page_csp
from api.storefront.websession import ACCESS_COOKIE, CSRF_COOKIE, SESSION_COOKIE
from evently import accounts
from evently.infra.resources import Resources
from evently.settings import Settings
from tests.conftest import AppFactory
from tests.factories import make_event, unique_email

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
    """Sign up through the form ("check your email", no session), then log in through the
    form: a browser with a session, and the token its pages carry."""
    b = Browserish(client)
    email = unique_email("sess")
    token = b.csrf((await b.get("/signup")).text)
    r = await b.post_form(
        "/signup", {"csrf_token": token, "email": email, "password": PASSWORD, "next": "/"}
    )
    assert r.status_code == 200, r.text
    assert "Check your email" in r.text
    assert SESSION_COOKIE not in b.jar
    token = b.csrf((await b.get("/login")).text)
    r = await b.post_form(
        "/login", {"csrf_token": token, "email": email, "password": PASSWORD, "next": "/"}
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
    assert r.status_code == 202
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


async def _stored(resources: Resources, email: str) -> bool:
    async with resources.sessionmaker() as session:
        return await accounts.get_user_by_email(session, email) is not None


@pytest.mark.parametrize(
    "name",
    ["Ann\x00Bell", "Ann\x07Bell", "Ann\x1b[31mBell", "Ann\nBell", "Ann\rBell", "Ann\x7fBell"],
    ids=["nul", "bell", "escape", "newline", "carriage-return", "delete"],
)
async def test_sign_up_refuses_control_characters_in_the_name_and_stores_nothing(
    client: httpx.AsyncClient, resources: Resources, name: str
) -> None:
    """The form is checked by the API's own model: a clear 422 on the re-rendered form (never
    a 500), nothing stored, the same refusal as ``POST /auth/register``."""
    b = Browserish(client)
    token = b.csrf((await b.get("/signup")).text)
    email = unique_email("ctl")
    form = {"csrf_token": token, "email": email, "password": PASSWORD, "full_name": name}
    r = await b.post_form("/signup", {**form, "next": "/"})
    assert r.status_code == 422, r.text
    alert = re.search(r'<p class="alert error" role="alert" id="form-error">([^<]*)</p>', r.text)
    assert alert, r.text
    what = "NUL characters" if "\x00" in name else "control characters"
    assert alert.group(1) == f"full_name: must not contain {what}", alert.group(1)
    assert SESSION_COOKIE not in b.jar
    # the form comes back filled in, without the control character
    assert f'value="{email}"' in r.text
    assert 'value="AnnBell"' in r.text or 'value="Ann[31mBell"' in r.text, r.text
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", r.text)
    assert not await _stored(resources, email)
    # the API refuses the same input for the same reason
    body = {"email": email, "password": PASSWORD, "full_name": name}
    r = await client.post("/api/v1/auth/register", json=body)
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    assert r.json()["detail"].endswith(f"must not contain {what}")
    assert not await _stored(resources, email)


async def test_sign_up_and_log_in_forms_answer_the_apis_refusals(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    b = Browserish(client)
    cases = [
        ("/signup", {"email": "ann\x00@example.com", "password": PASSWORD}, 422, "NUL"),
        ("/signup", {"email": unique_email("weak"), "password": "short"}, 422, "10 characters"),
        ("/signup", {"email": "not-an-email", "password": PASSWORD}, 422, "email:"),
        (
            "/signup",
            {"email": unique_email("long"), "password": PASSWORD, "full_name": "x" * 201},
            422,
            "full_name: String should have at most 200 characters",
        ),
        ("/login", {"email": unique_email("nul"), "password": "pass\x00word!"}, 422, "NUL"),
    ]
    for path, fields, status, words in cases:
        token = b.csrf((await b.get(path)).text)
        r = await b.post_form(path, {"csrf_token": token, "next": "/", **fields})
        assert r.status_code == status, (fields, r.status_code, r.text[:300])
        assert 'role="alert"' in r.text, r.text
        assert words in r.text, (fields, r.text)
        assert SESSION_COOKIE not in b.jar
        if "\x00" not in fields["email"]:  # (Postgres could not even be asked about that one)
            assert not await _stored(resources, fields["email"])
    # surrounding blanks in a name are trimmed as the API trims them
    email = unique_email("trim")
    token = b.csrf((await b.get("/signup")).text)
    form = {"csrf_token": token, "email": email, "password": PASSWORD, "full_name": "  Ann Bell "}
    assert (await b.post_form("/signup", {**form, "next": "/"})).status_code == 200
    async with resources.sessionmaker() as session:
        user = await accounts.get_user_by_email(session, email)
    assert user is not None
    assert user.full_name == "Ann Bell"


def _ip() -> str:
    n = uuid.uuid4().int  # an address no other test uses: its counters start at zero
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


@asynccontextmanager
async def _limited_client(
    resources: Resources, settings: Settings, app_factory: AppFactory, ip: str
) -> AsyncIterator[httpx.AsyncClient]:
    app = app_factory(dataclasses.replace(resources, settings=settings), settings)
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_the_storefront_and_the_api_share_one_rate_limit_budget(
    settings: Settings, resources: Resources, app_factory: AppFactory
) -> None:
    limited = settings.model_copy(
        update={"login_rate_limit": 2, "register_rate_limit": 1, "rate_limit_window_seconds": 60}
    )
    api_login = "/api/v1/auth/login"
    # log-in attempts through the API use up the budget of the page's log-in from that address,
    # and the other way round; the account's owner at another address is not locked out
    for first_way in ("api", "page"):
        email = unique_email(f"budget-{first_way}")
        right = {"email": email, "password": PASSWORD}
        async with _limited_client(resources, limited, app_factory, _ip()) as c:
            r = await c.post("/api/v1/auth/register", json=right)
            assert r.status_code == 202, r.text
            wrong = {"email": email, "password": "wrong password!"}
            b = Browserish(c)
            for _ in range(2):
                if first_way == "api":
                    assert (await c.post(api_login, json=wrong)).status_code == 401
                else:
                    token = b.csrf((await b.get("/login")).text)
                    r = await b.post_form("/login", {"csrf_token": token, "next": "/", **wrong})
                    assert r.status_code == 401, r.text
            if first_way == "api":  # the right password through the page: still limited
                token = b.csrf((await b.get("/login")).text)
                r = await b.post_form("/login", {"csrf_token": token, "next": "/", **right})
                assert r.status_code == 429, r.text
                assert "Too many login attempts." in r.text
                assert SESSION_COOKIE not in b.jar
            else:
                r = await c.post(api_login, json=right)
                assert r.status_code == 429, r.text
                assert r.json()["detail"].startswith("Too many login attempts.")
        async with _limited_client(resources, limited, app_factory, _ip()) as c:
            if first_way == "api":
                b = Browserish(c)
                token = b.csrf((await b.get("/login")).text)
                r = await b.post_form("/login", {"csrf_token": token, "next": "/", **right})
                assert r.status_code == 303, r.text
            else:
                assert (await c.post(api_login, json=right)).status_code == 200
    # one sign-up through the API from an address spends that address's sign-up budget
    async with _limited_client(resources, limited, app_factory, _ip()) as c:
        r = await c.post(
            "/api/v1/auth/register", json={"email": unique_email("reg"), "password": PASSWORD}
        )
        assert r.status_code == 202
        b = Browserish(c)
        token = b.csrf((await b.get("/signup")).text)
        email = unique_email("reg-page")
        r = await b.post_form(
            "/signup", {"csrf_token": token, "next": "/", "email": email, "password": PASSWORD}
        )
        assert r.status_code == 429, r.text
        assert "Too many register attempts." in r.text
        assert not await _stored(resources, email)


async def test_a_refused_log_in_keeps_the_session_it_renewed(client: httpx.AsyncClient) -> None:
    """The form's visit spends a lapsed session's refresh token for a new pair; a refused log-in
    undoes only its own attempt, so the new pair the answer sets still signs the visitor in."""
    b, token = await signed_in(client)
    b.jar.pop(ACCESS_COOKIE)
    old_session = b.jar[SESSION_COOKIE]
    wrong = {"email": unique_email("nobody"), "password": "wrong password!"}
    r = await b.post_form("/login", {"csrf_token": token, "next": "/", **wrong})
    assert r.status_code == 401, r.text
    assert b.jar[SESSION_COOKIE] != old_session  # renewed...
    assert ACCESS_COOKIE in b.jar
    b.jar.pop(ACCESS_COOKIE)
    assert (await b.get("/bookings")).status_code == 200  # ...and the renewal was kept
    assert ACCESS_COOKIE in b.jar


@pytest.mark.usefixtures("running_workers")
async def test_a_csrf_token_of_one_session_is_refused_in_another(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    """Issue 28: the token is a MAC of the session id. Another session's token, or one made
    for a nonce the attacker chose and planted as a cookie, opens nothing."""
    from api.storefront.websession import csrf_token

    event = await make_event(resources, capacity=5)
    alice, alice_token = await signed_in(client)
    bob, bob_token = await signed_in(client)
    assert alice_token != bob_token
    body = {"event_id": str(event.id), "quantity": 1}
    # Bob's page token with Alice's cookies: refused, on the API bridge and on the forms
    r = await alice.call("POST", "/api/v1/bookings/reserve", body, **{"X-CSRF-Token": bob_token})
    assert r.status_code == 403
    assert r.json()["code"] == "csrf_failed"
    r = await alice.post_form("/logout", {"csrf_token": bob_token})
    assert r.status_code == 403
    assert SESSION_COOKIE in alice.jar  # still signed in
    alice.jar.pop(ACCESS_COOKIE)  # a lapsed access cookie: the session cookie decides
    r = await alice.call("POST", "/session/renew", **{"X-CSRF-Token": bob_token})
    assert r.status_code == 403
    # a planted CSRF cookie with the visitor token that goes with it: refused too
    alice.jar[CSRF_COOKIE] = "planted-nonce"
    planted = csrf_token(resources.settings.jwt_secret, "planted-nonce", None)
    r = await alice.call("POST", "/session/renew", **{"X-CSRF-Token": planted})
    assert r.status_code == 403
    r = await alice.call("POST", "/session/renew", **{"X-CSRF-Token": alice_token})
    assert r.status_code == 204  # her own page's token, whatever the CSRF cookie says
    r = await alice.call("POST", "/api/v1/bookings/reserve", body, **{"X-CSRF-Token": planted})
    assert r.status_code == 403
    avail = (await client.get(f"/api/v1/events/{event.id}/availability")).json()
    assert avail["available"] == 5
    # each with its own token: fine
    r = await bob.call("POST", "/api/v1/bookings/reserve", body, **{"X-CSRF-Token": bob_token})
    assert r.status_code == 201, r.text


async def test_the_sign_up_form_answers_a_taken_email_as_a_new_one(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    """The same "check your email" page, no session either way: the page tells nothing."""
    taken = unique_email("taken")
    r = await client.post("/api/v1/auth/register", json={"email": taken, "password": PASSWORD})
    assert r.status_code == 202
    pages = []
    for email in (taken, unique_email("fresh")):
        b = Browserish(client)
        token = b.csrf((await b.get("/signup")).text)
        form = {"csrf_token": token, "email": email, "password": "another password!", "next": "/"}
        r = await b.post_form("/signup", form)
        assert r.status_code == 200, r.text
        assert SESSION_COOKIE not in b.jar
        assert ACCESS_COOKIE not in b.jar
        pages.append(re.sub(r'content="[0-9a-f]{64}"|value="[0-9a-f]{64}"', "", r.text))
    assert re.sub(r"server-now[^>]*>", "", pages[0]) == re.sub(r"server-now[^>]*>", "", pages[1])
    assert "Check your email" in pages[0]
