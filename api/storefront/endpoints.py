"""The storefront's pages (docs/storefront.md): server-rendered shells, one small script.

Pages render their frame and the ids they are about; the script (``static/app.js``) fetches
the data from the JSON API with the visitor's cookie session (:mod:`api.storefront.websession`)
so every rule of the API — rate limits, admission control, the sold-out fast path, 202
pending — applies to a page exactly as to any client. Log-in, sign-up and log-out are plain
forms (no script needed) over the API's own sign-up/log-in service and input models
(:mod:`api.auth.service`, :mod:`api.auth.schemas`): the same checks, the same rate-limit
budget, the same token rules. None of these routes is in the OpenAPI document: they are HTML.
"""

from __future__ import annotations

import gzip
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import service as auth
from api.auth.deps import RateLimiterDep, client_ip
from api.auth.schemas import (
    LoginRequest,
    PasswordResetConfirm,
    PasswordResetRequest,
    RegisterRequest,
    VerifyEmailRequest,
)
from api.deps import ResourcesDep, SessionDep
from api.http.ratelimit import RequestRateLimiter
from api.problems import render
from api.storefront.seatmap import seat_map
from api.storefront.websession import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    CSRF_FIELD,
    SESSION_COOKIE,
    csrf_token,
    csrf_valid,
    new_nonce,
    secure_cookies,
)
from evently import seating
from evently.errors import CsrfFailed, EventlyError, Unauthorized
from evently.infra.resources import Resources
from evently.security import AccessClaims, access_token_session, decode_access_token
from evently.settings import Settings

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

# the paths these pages own: the HTTP edge gives them this module's policy, not the JSON one
PAGE_PATHS = frozenset(
    {
        "/",
        "/login",
        "/signup",
        "/logout",
        "/bookings",
        "/session/renew",
        # account recovery and verification (issue 32)
        "/forgot-password",
        "/reset-password",
        "/verify-email",
    }
)
PAGE_PREFIXES = ("/events/", "/checkout/", "/waitlist/", "/static/")


def is_page_path(path: str) -> bool:
    return path in PAGE_PATHS or path.startswith(PAGE_PREFIXES)


# Stripe's documented policy for Stripe.js and Elements (docs.stripe.com/security/guide#content-
# security-policy); an emulator (localstripe) serves its stand-in and API from one origin
STRIPE_CSP = {
    "script": " https://js.stripe.com",
    "connect": " https://api.stripe.com",
    "frame": " https://js.stripe.com https://hooks.stripe.com",
}


NO_FRAMES = " 'none'"


def page_csp(settings: Settings) -> str:
    """Scripts and styles from this origin only (no inline code at all), plus Stripe.js, its
    API and its frames when the Stripe provider is on."""
    script = connect = frame = ""
    if settings.payment_provider == "stripe":
        parts = urlsplit(settings.stripe_js_url)
        if parts.netloc == "js.stripe.com":
            script, connect, frame = (
                STRIPE_CSP["script"],
                STRIPE_CSP["connect"],
                STRIPE_CSP["frame"],
            )
        else:
            script = connect = frame = f" {parts.scheme}://{parts.netloc}"
    return (
        "default-src 'none'; "
        f"script-src 'self'{script}; "
        "style-src 'self'; "
        "img-src 'self' data:; "
        f"connect-src 'self'{connect}; "
        f"frame-src{frame or NO_FRAMES}; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


router = APIRouter(include_in_schema=False)


@dataclass
class Visit:
    """Who is asking, from the cookies; ``cookies``: what the answer must set (``None``:
    delete)."""

    user_id: uuid.UUID | None
    nonce: str | None
    cookies: dict[str, tuple[str, int] | None] = field(default_factory=dict)
    session_id: str | None = None  # the refresh-token family: what the CSRF token is bound to

    def csrf(self, settings: Settings) -> str:
        assert self.nonce is not None
        return csrf_token(settings.jwt_secret, self.nonce, self.session_id)


def _access_claims(settings: Settings, access: str | None) -> AccessClaims | None:
    if access:
        try:
            return decode_access_token(settings, access)
        except Unauthorized:
            pass
    return None


async def _session_id(request: Request, session: AsyncSession, settings: Settings) -> str | None:
    """The visitor's session id from the cookies, without renewing anything: the access
    cookie's ``sid`` (expired or not), else the family of the session cookie's token."""
    access = request.cookies.get(ACCESS_COOKIE)
    sid = access_token_session(settings.jwt_secret, access) if access else None
    if sid is None and (refresh := request.cookies.get(SESSION_COOKIE)):
        family = await auth.session_of(session, refresh)
        sid = str(family) if family is not None else None
    return sid


async def _csrf_ok(
    request: Request, session: AsyncSession, settings: Settings, token: str | None
) -> bool:
    sid = await _session_id(request, session, settings)
    return csrf_valid(settings.jwt_secret, request.cookies.get(CSRF_COOKIE), sid, token)


async def read_visit(request: Request, session: AsyncSession, res: Resources) -> Visit:
    """The visitor, from the access cookie; when it has lapsed, the session cookie's refresh
    token is spent for a new pair (:func:`api.auth.service.refresh`, the rules of ``POST
    /auth/refresh``); a session that is over (revoked, expired, reused) loses its cookies."""
    settings = res.settings
    cookies = request.cookies
    claims = _access_claims(settings, cookies.get(ACCESS_COOKIE))
    visit = Visit(
        user_id=claims.user_id if claims else None,
        nonce=cookies.get(CSRF_COOKIE),
        session_id=claims.session_id if claims else None,
    )
    if visit.nonce is None:
        visit.nonce = new_nonce()
        visit.cookies[CSRF_COOKIE] = (visit.nonce, settings.refresh_token_days * 86400)
    refresh = cookies.get(SESSION_COOKIE)
    if visit.user_id is None and refresh:
        try:
            pair = await auth.refresh(session, res.sessionmaker, settings, refresh)
        except Unauthorized:
            visit.cookies[SESSION_COOKIE] = None
            visit.cookies[ACCESS_COOKIE] = None
        else:
            _sign_in_cookies(visit, settings, pair)
    return visit


def _sign_in_cookies(visit: Visit, settings: Settings, pair: auth.SignedIn) -> None:
    visit.user_id = pair.user.id
    visit.session_id = str(pair.refresh.family_id)
    visit.cookies[SESSION_COOKIE] = (pair.refresh.token, settings.refresh_token_days * 86400)
    visit.cookies[ACCESS_COOKIE] = (pair.access_token, settings.access_token_minutes * 60)


def apply_visit(response: Response, visit: Visit, settings: Settings) -> Response:
    secure = secure_cookies(settings)
    for name, value in visit.cookies.items():
        if value is None:
            response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
        else:
            response.set_cookie(
                name,
                value[0],
                max_age=value[1],
                path="/",
                secure=secure,
                httponly=True,
                samesite="lax",
            )
    return response


def _page(
    visit: Visit,
    settings: Settings,
    template: str,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response:
    html = _templates.get_template(template).render(
        csrf=visit.csrf(settings),
        signed_in=visit.user_id is not None,
        server_now_ms=int(time.time() * 1000),
        provider=settings.payment_provider,
        stripe_js_url=settings.stripe_js_url if settings.payment_provider == "stripe" else None,
        stripe_key=settings.stripe_publishable_key or "",
        **context,
    )
    response = HTMLResponse(
        html,
        status_code=status_code,
        headers={"content-security-policy": page_csp(settings), "cache-control": "no-store"},
    )
    return apply_visit(response, visit, settings)


def to_login(request: Request, visit: Visit, settings: Settings) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return apply_visit(
        RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303),
        visit,
        settings,
    )


def _safe_next(value: str | None) -> str:
    """Only a path on this site (never ``//host`` or ``https://...``): no open redirect."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _echo(value: str) -> str:
    """What a refused form shows again of its input: never a control character."""
    return "".join(c for c in value if ord(c) >= 32 and ord(c) != 127)


# ---- pages ----------------------------------------------------------------------------------


@router.get("/")
async def home(request: Request, session: SessionDep, res: ResourcesDep) -> Response:
    visit = await read_visit(request, session, res)
    return _page(visit, res.settings, "home.html", page="home", title="Find an event")


@router.get("/events/{event_id}")
async def event_page(
    event_id: uuid.UUID, request: Request, session: SessionDep, res: ResourcesDep
) -> Response:
    visit = await read_visit(request, session, res)
    # a seated event (issue 34): its map, drawn here; a general-admission event's page is as before
    seats = None
    if await seating.is_seated(res.engine, event_id):
        seats = await seat_map(session, event_id, res.settings.max_tickets_per_booking)
    page = _page(
        visit,
        res.settings,
        "event.html",
        page="event",
        title="Event",
        event_id=event_id,
        seat_map=seats,
        max_tickets=res.settings.max_tickets_per_booking,
        login_url=f"/login?next={quote(f'/events/{event_id}', safe='')}",
        signup_url=f"/signup?next={quote(f'/events/{event_id}', safe='')}",
    )
    return _gzipped(request, page) if seats is not None else page


def _gzipped(request: Request, response: Response) -> Response:
    """A stadium's map is megabytes of markup that compresses about tenfold: sent gzipped to a
    browser that accepts it (the other pages are small and stay as they are)."""
    if "gzip" not in request.headers.get("accept-encoding", "").lower():
        return response
    body = gzip.compress(bytes(response.body), compresslevel=5)
    response.body = body
    response.headers["content-length"] = str(len(body))
    response.headers["content-encoding"] = "gzip"
    response.headers["vary"] = "Accept-Encoding"
    return response


@router.get("/checkout/{booking_id}")
async def checkout_page(
    booking_id: uuid.UUID, request: Request, session: SessionDep, res: ResourcesDep
) -> Response:
    visit = await read_visit(request, session, res)
    # a guest's booking opens with its access key (issue 32): the script sends it to the API,
    # which checks it; without one, log in
    if visit.user_id is None and not request.query_params.get("key"):
        return to_login(request, visit, res.settings)
    return _page(
        visit,
        res.settings,
        "checkout.html",
        page="checkout",
        title="Checkout",
        booking_id=booking_id,
    )


@router.get("/bookings")
async def bookings_page(request: Request, session: SessionDep, res: ResourcesDep) -> Response:
    visit = await read_visit(request, session, res)
    if visit.user_id is None:
        return to_login(request, visit, res.settings)
    return _page(visit, res.settings, "bookings.html", page="bookings", title="My bookings")


@router.get("/waitlist/{entry_id}")
async def waitlist_page(
    entry_id: uuid.UUID, request: Request, session: SessionDep, res: ResourcesDep
) -> Response:
    visit = await read_visit(request, session, res)
    if visit.user_id is None:
        return to_login(request, visit, res.settings)
    return _page(
        visit, res.settings, "waitlist.html", page="waitlist", title="Waitlist", entry_id=entry_id
    )


# ---- sign up, log in, log out ---------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request, session: SessionDep, res: ResourcesDep) -> Response:
    visit = await read_visit(request, session, res)
    next_url = _safe_next(request.query_params.get("next"))
    if visit.user_id is not None:
        return apply_visit(RedirectResponse(next_url, status_code=303), visit, res.settings)
    return _page(visit, res.settings, "login.html", page="login", title="Log in", next=next_url)


@router.get("/signup")
async def signup_page(request: Request, session: SessionDep, res: ResourcesDep) -> Response:
    visit = await read_visit(request, session, res)
    next_url = _safe_next(request.query_params.get("next"))
    return _page(visit, res.settings, "signup.html", page="signup", title="Sign up", next=next_url)


@router.post("/login")
async def login(
    request: Request, session: SessionDep, res: ResourcesDep, limiter: RateLimiterDep
) -> Response:
    return await _auth_form(request, session, res, limiter, signup=False)


@router.post("/signup")
async def signup(
    request: Request, session: SessionDep, res: ResourcesDep, limiter: RateLimiterDep
) -> Response:
    return await _auth_form(request, session, res, limiter, signup=True)


async def _auth_form(
    request: Request,
    session: AsyncSession,
    res: Resources,
    limiter: RequestRateLimiter,
    *,
    signup: bool,
) -> Response:
    settings = res.settings
    form = await _form(request)
    visit = await read_visit(request, session, res)
    next_url = _safe_next(form.get("next"))
    template, title = ("signup.html", "Sign up") if signup else ("login.html", "Log in")
    try:
        if not csrf_valid(
            settings.jwt_secret,
            request.cookies.get(CSRF_COOKIE),
            visit.session_id,
            form.get(CSRF_FIELD),
        ):
            raise CsrfFailed()
        # the API's own input models and service: the same checks, rate-limit keys and answers
        ip = client_ip(request)
        if signup:
            sign_up = auth.parse(RegisterRequest, form)
            # a refusal undoes the attempt only, not a session renewed by read_visit above
            async with session.begin_nested():
                await auth.register(session, settings, limiter, ip, sign_up)
            # the same page for a new and a taken email, and no session: it reveals nothing
            return _page(
                visit,
                settings,
                "signup_done.html",
                page="signup",
                title="Check your email",
                login_url=f"/login?next={quote(next_url, safe='')}",
            )
        else:
            log_in = auth.parse(LoginRequest, form)
            async with session.begin_nested():
                pair = await auth.log_in(session, settings, limiter, ip, log_in)
    except EventlyError as exc:
        return _page(
            visit,
            settings,
            template,
            status_code=exc.status,
            page=template.removesuffix(".html"),
            title=title,
            next=next_url,
            email=_echo(form.get("email", "")),
            full_name=_echo(form.get("full_name", "")),
            error=exc.detail,
        )
    _sign_in_cookies(visit, settings, pair)
    visit.nonce = new_nonce()  # a new session gets a new CSRF secret (no fixation)
    visit.cookies[CSRF_COOKIE] = (visit.nonce, settings.refresh_token_days * 86400)
    return apply_visit(RedirectResponse(next_url, status_code=303), visit, settings)


@router.post("/logout")
async def logout(request: Request, session: SessionDep, res: ResourcesDep) -> Response:
    settings: Settings = res.settings
    form = await _form(request)
    visit = Visit(user_id=None, nonce=request.cookies.get(CSRF_COOKIE))
    if not await _csrf_ok(request, session, settings, form.get(CSRF_FIELD)):
        visit = await read_visit(request, session, res)
        return _page(
            visit,
            settings,
            "home.html",
            status_code=403,
            page="home",
            title="Find an event",
            error=CsrfFailed.message,
        )
    await auth.log_out(session, res.redis, request.cookies.get(SESSION_COOKIE))
    visit.cookies[SESSION_COOKIE] = None
    visit.cookies[ACCESS_COOKIE] = None
    return apply_visit(RedirectResponse("/", status_code=303), visit, settings)


@router.post("/session/renew")
async def renew(request: Request, session: SessionDep, res: ResourcesDep) -> Response:
    """A page open longer than the access token lives (a waitlist page, for hours) renews it
    from the session: 204 with a fresh access cookie, 401 when the session is over. The
    script calls it once when the API answers 401, with the page's CSRF token."""
    settings = res.settings
    token = request.headers.get("x-csrf-token")
    sid = await _session_id(request, session, settings)
    if sid is None:  # no session to renew (none, or logged out): nothing changes either way
        return render(Unauthorized("Your session has ended: log in again."))
    if not csrf_valid(settings.jwt_secret, request.cookies.get(CSRF_COOKIE), sid, token):
        return render(CsrfFailed())
    visit = await read_visit(request, session, res)
    if visit.user_id is None:
        return apply_visit(
            render(Unauthorized("Your session has ended: log in again.")), visit, settings
        )
    if ACCESS_COOKIE not in visit.cookies:  # the access cookie was still good: give it again
        access = request.cookies.get(ACCESS_COOKIE, "")
        visit.cookies[ACCESS_COOKIE] = (access, settings.access_token_minutes * 60)
    return apply_visit(Response(status_code=204), visit, settings)


# ---- account recovery and verification (issue 32, docs/buyers.md) ------------------------------
# Plain forms over the API's own service (api/auth/service.py): the same limits and answers.
# Nothing changes on a GET (a mail scanner that opens a link spends nothing): the pages carry
# the token into a form that the visitor submits.


def _csrf_checked(request: Request, visit: Visit, settings: Settings, form: dict[str, str]) -> None:
    if not csrf_valid(
        settings.jwt_secret,
        request.cookies.get(CSRF_COOKIE),
        visit.session_id,
        form.get(CSRF_FIELD),
    ):
        raise CsrfFailed()


def _notice(
    visit: Visit, settings: Settings, title: str, message: str, link: tuple[str, str] | None
) -> Response:
    return _page(
        visit,
        settings,
        "notice.html",
        page="notice",
        title=title,
        message=message,
        link_url=link[0] if link else None,
        link_text=link[1] if link else None,
    )


@router.get("/forgot-password")
async def forgot_password_page(
    request: Request, session: SessionDep, res: ResourcesDep
) -> Response:
    visit = await read_visit(request, session, res)
    return _page(
        visit, res.settings, "forgot_password.html", page="forgot", title="Forgot your password?"
    )


@router.post("/forgot-password")
async def forgot_password(
    request: Request, session: SessionDep, res: ResourcesDep, limiter: RateLimiterDep
) -> Response:
    settings = res.settings
    form = await _form(request)
    visit = await read_visit(request, session, res)
    try:
        _csrf_checked(request, visit, settings, form)
        body = auth.parse(PasswordResetRequest, form)
        async with session.begin_nested():
            await auth.request_password_reset(session, settings, limiter, client_ip(request), body)
    except EventlyError as exc:
        return _page(
            visit,
            settings,
            "forgot_password.html",
            status_code=exc.status,
            page="forgot",
            title="Forgot your password?",
            email=_echo(form.get("email", "")),
            error=exc.detail,
        )
    # the same page whether the email has an account or not
    return _notice(
        visit,
        settings,
        "Check your email",
        "If an account uses this address, we have mailed it a link to choose a new password. "
        f"The link works once, within {settings.password_reset_minutes} minutes.",
        ("/login", "Back to log in"),
    )


@router.get("/reset-password")
async def reset_password_page(request: Request, session: SessionDep, res: ResourcesDep) -> Response:
    visit = await read_visit(request, session, res)
    token = _echo(request.query_params.get("token", ""))[:512]
    return _page(
        visit,
        res.settings,
        "reset_password.html",
        page="reset",
        title="Choose a new password",
        token=token,
    )


@router.post("/reset-password")
async def reset_password(
    request: Request, session: SessionDep, res: ResourcesDep, limiter: RateLimiterDep
) -> Response:
    settings = res.settings
    form = await _form(request)
    visit = await read_visit(request, session, res)
    try:
        _csrf_checked(request, visit, settings, form)
        body = auth.parse(PasswordResetConfirm, form)
        async with session.begin_nested():
            await auth.reset_password(
                session, res.redis, settings, limiter, client_ip(request), body
            )
    except EventlyError as exc:
        return _page(
            visit,
            settings,
            "reset_password.html",
            status_code=exc.status,
            page="reset",
            title="Choose a new password",
            token=_echo(form.get("token", ""))[:512],
            error=exc.detail,
        )
    # every session of the account is over, this browser's too if it was signed in
    if visit.user_id is not None:
        visit.user_id = None
        visit.cookies[SESSION_COOKIE] = None
        visit.cookies[ACCESS_COOKIE] = None
    return _notice(
        visit,
        settings,
        "Password changed",
        "Your new password is set and every session of your account has been signed out.",
        ("/login", "Log in"),
    )


@router.get("/verify-email")
async def verify_email_page(request: Request, session: SessionDep, res: ResourcesDep) -> Response:
    visit = await read_visit(request, session, res)
    token = _echo(request.query_params.get("token", ""))[:512]
    return _page(
        visit,
        res.settings,
        "verify_email.html",
        page="verify",
        title="Confirm your email address",
        token=token,
    )


@router.post("/verify-email")
async def verify_email(request: Request, session: SessionDep, res: ResourcesDep) -> Response:
    settings = res.settings
    form = await _form(request)
    visit = await read_visit(request, session, res)
    try:
        _csrf_checked(request, visit, settings, form)
        body = auth.parse(VerifyEmailRequest, form)
        async with session.begin_nested():
            await auth.verify_email(session, body)
    except EventlyError as exc:
        return _page(
            visit,
            settings,
            "verify_email.html",
            status_code=exc.status,
            page="verify",
            title="Confirm your email address",
            token=_echo(form.get("token", ""))[:512],
            error=exc.detail,
        )
    return _notice(
        visit,
        settings,
        "Email address confirmed",
        "Thank you: your email address is confirmed.",
        ("/bookings", "My bookings") if visit.user_id else ("/login", "Log in"),
    )
