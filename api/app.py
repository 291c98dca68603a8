"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from api.admin.endpoints import router as admin_router
from api.auth.endpoints import router as auth_router
from api.bookings.endpoints import router as bookings_router
from api.bookings.fastpath import ReserveFastPath
from api.checkin.endpoints import router as checkin_router
from api.codec.endpoints import CodecCors
from api.codec.endpoints import router as codec_router
from api.door.pages import STATIC_DIR as DOOR_STATIC_DIR
from api.door.pages import STATIC_PATH as DOOR_STATIC_PATH
from api.door.pages import is_door_path
from api.door.pages import router as door_router
from api.events.endpoints import router as events_router
from api.health.endpoints import router as health_router
from api.http.deadline import RequestDeadline
from api.http.edge import HttpEdge
from api.http.headers import security_headers
from api.http.openapi import document_http
from api.invoices.endpoints import router as invoices_router
from api.live.endpoints import router as live_router

# the back office (issue 30)
from api.manage.endpoints import STATIC_DIR as MANAGE_STATIC_DIR
from api.manage.endpoints import is_manage_path
from api.manage.endpoints import router as manage_router
from api.metrics import ObservabilityMiddleware
from api.metrics import router as metrics_router
from api.notifications.endpoints import router as notifications_router
from api.organizations.endpoints import router as organizations_router
from api.organizer.endpoints import router as organizer_router
from api.payments.endpoints import MAX_BODY as WEBHOOK_MAX_BODY
from api.payments.endpoints import router as payments_router
from api.problems import document_common_problems, install_problem_handlers
from api.proxies import TrustedProxies
from api.questions.endpoints import router as questions_router  # issue 32
from api.search.endpoints import router as search_router
from api.seating.endpoints import router as seating_router
from api.storefront.endpoints import STATIC_DIR, is_page_path
from api.storefront.endpoints import router as storefront_router
from api.storefront.websession import CookieAuth
from api.support.endpoints import router as support_router
from api.ticket_types.endpoints import router as ticket_types_router
from api.tickets.endpoints import router as tickets_router
from api.users.endpoints import router as users_router
from api.waitingroom.endpoints import router as waitingroom_router
from api.waitingroom.fastpath import WaitingRoomFastPath
from api.waitlist.endpoints import router as waitlist_router
from api.webhooks.endpoints import router as webhooks_router
from evently.infra.logging import configure_logging
from evently.infra.resources import Resources, open_resources
from evently.infra.tracing import API_SERVICE, TELEMETRY_OFF, Tracing, setup_tracing
from evently.inventory.gate import Gate
from evently.security import use_password_profile
from evently.settings import Settings, get_settings
from workflows.connection import TemporalClient, connect_configured

API_PREFIX = "/api/v1"

# request-body limits of their own (every other path: EVENTLY_MAX_BODY_BYTES); a path here is
# refused with 413 above its limit before anything reads the body (api/http/edge.py)
BODY_LIMITS: dict[str, int] = {
    f"{API_PREFIX}/payments/webhook": WEBHOOK_MAX_BODY,
    f"{API_PREFIX}/payments/stripe/webhook": WEBHOOK_MAX_BODY,
    "*/seating-plans": 16 * 1024 * 1024,  # a 100,000-seat plan's JSON (issue 34)
}


def api_router() -> APIRouter:
    """Every resource router under /api/v1; feature modules register here."""
    router = APIRouter(prefix=API_PREFIX)
    # before events: GET /events/{id}.ics must be matched before GET /events/{id}
    router.include_router(tickets_router)
    # feature routers, one line each (keep this list sorted)
    router.include_router(admin_router)
    router.include_router(auth_router)
    router.include_router(bookings_router)
    router.include_router(checkin_router)
    router.include_router(events_router)
    router.include_router(live_router)
    router.include_router(notifications_router)
    router.include_router(organizations_router)
    router.include_router(organizer_router)
    router.include_router(payments_router)
    router.include_router(waitingroom_router)
    router.include_router(search_router)
    router.include_router(support_router)
    router.include_router(ticket_types_router)
    router.include_router(users_router)
    router.include_router(waitlist_router)
    router.include_router(webhooks_router)
    router.include_router(codec_router)  # the Temporal UI's remote codec (issue 33)
    router.include_router(questions_router)  # attendees and questions (issue 32)
    router.include_router(invoices_router)  # invoices and credit notes (issue 31)
    router.include_router(seating_router)  # reserved seating (issue 34)
    return router


def create_app(
    settings: Settings | None = None,
    resources: Resources | None = None,
    temporal: TemporalClient | None = None,
    tracing: Tracing | None = None,
) -> FastAPI:
    """Build the app. Pass ``resources`` and ``temporal`` to share clients (tests); else the
    lifespan opens them. Tracing (``EVENTLY_OTLP_ENDPOINT``, or ``tracing`` given) traces the
    requests and the clients the lifespan opens; given clients are used as they come."""
    settings = settings or get_settings()
    use_password_profile(settings.password_hash_profile)
    if tracing is None and resources is None:
        tracing = setup_tracing(settings, API_SERVICE)  # None (nothing installed) when unset

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if resources is not None and temporal is not None:
            yield
            return
        configure_logging(settings)
        async with open_resources(settings) as res:
            if tracing is not None:
                tracing.instrument_resources(res)
            app.state.resources = res
            # this process cannot know what a crashed predecessor borrowed from the sold-out
            # gates: they are rebuilt from Postgres on their next use (never low)
            await Gate(res.redis).reset_all()
            # lazy: the API starts (and reports not-ready) while Temporal is still down
            app.state.temporal = await connect_configured(
                settings,
                res.endpoints.temporal_address,
                lazy=True,
                tracer=tracing.tracer if tracing is not None else None,
            )
            try:
                yield
            finally:
                if tracing is not None:
                    tracing.shutdown()  # export what is buffered

    docs = settings.api_docs_enabled  # EVENTLY_API_DOCS (issue 28: off in production)
    app = FastAPI(
        title="Evently",
        version="0.1.0",
        description="Event ticketing: hold seats, pay within the window, never oversold.",
        lifespan=lifespan,
        telemetry=tracing.fastapi_telemetry() if tracing is not None else TELEMETRY_OFF,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.settings = settings  # GET /metrics reads its switch and token (api/metrics.py)
    if resources is not None and temporal is not None:
        app.state.resources = resources
        app.state.temporal = temporal
    install_problem_handlers(app, last_resort_headers=security_headers)
    app.include_router(health_router)
    app.include_router(metrics_router)
    # every request answers within the deadline (time to first byte); the fast path's
    # microsecond answers are outside it
    app.add_middleware(RequestDeadline, seconds=settings.request_deadline_seconds)
    app.add_middleware(ReserveFastPath)  # sold-out/overloaded reserve answers, no FastAPI stack
    app.add_middleware(WaitingRoomFastPath)  # the waiting room's join and poll, no FastAPI stack
    # storefront pages call /api/ with a cookie session: CSRF-checked, then a bearer request
    # like any other (before the fast path, so a page's reserve meets every rule of the API)
    app.add_middleware(CookieAuth, secret=settings.jwt_secret)
    # body limits, CORS, security and rate-limit headers on every answer (fast path included);
    # HSTS reads the scope's scheme, so the proxy-headers layer sits outside this one
    app.add_middleware(
        HttpEdge,
        max_body_bytes=settings.max_body_bytes,
        body_limits=BODY_LIMITS,
        cors_origins=settings.cors_origins,
        docs_paths=[
            p for p in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if p
        ],
        page_paths=lambda path: is_page_path(path) or is_door_path(path) or is_manage_path(path),
    )
    app.add_middleware(ObservabilityMiddleware)  # request id, metrics, access log
    if settings.temporal_codec_cors_origins:  # the Temporal UI's origin, /codec/ only
        app.add_middleware(CodecCors, origins=settings.temporal_codec_cors_origins)
    if settings.trusted_proxy_networks:  # outermost: every layer sees the real client address
        app.add_middleware(
            TrustedProxies,
            networks=settings.trusted_proxy_networks,
            header=settings.forwarded_header,
        )
    app.include_router(api_router())
    # the codec again at the path the issue and Temporal's docs name (/codec/decode|encode):
    # the same routes, auth and CORS (issue 33; docs/temporal.md)
    app.include_router(codec_router)
    # the storefront (issue 19): buyer pages at /, their script and styles at /static
    app.include_router(storefront_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # the door scanner (issue 30): its page under /manage, its script and decoder apart
    app.include_router(door_router)
    app.mount(DOOR_STATIC_PATH, StaticFiles(directory=DOOR_STATIC_DIR), name="door-static")
    # the organizer's back office (issue 30): pages at /manage, their script and styles
    app.mount("/manage/static", StaticFiles(directory=MANAGE_STATIC_DIR), name="manage-static")
    app.include_router(manage_router)
    document_common_problems(app)
    document_http(app, max_body_bytes=settings.max_body_bytes, body_limits=BODY_LIMITS)
    return app
